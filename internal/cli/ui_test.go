package cli

import (
	"context"
	"strings"
	"testing"
)

// TestUIRefusesBeforeServing: a --listen other machines can reach, a bad
// --interval or a cluster that is not on this machine stop weft ui before
// it listens, with the exit status and a message that names the fix.
func TestUIRefusesBeforeServing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--listen", "0.0.0.0:8090"}, exitBadInput, "--allow-remote"},
		{[]string{"--listen", ":8090"}, exitBadInput, "every interface"},
		{[]string{"--interval", "1ms"}, exitBadInput, "--interval"},
		{[]string{"--listen", "127.0.0.1:0"}, 1, "does not exist on this machine"},
	} {
		var out, errb strings.Builder
		g := &globals{cluster: "uinosuch", stateRoot: t.TempDir(), stdout: &out, stderr: &errb}
		cmd := newUICmd(g)
		cmd.SetArgs(tc.args)
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		ee, ok := err.(*exitError)
		if !ok || ee.code != tc.code || !strings.Contains(ee.Error(), tc.want) {
			t.Errorf("weft ui %v: %v, want exit %d saying %q", tc.args, err, tc.code, tc.want)
		}
	}
}
