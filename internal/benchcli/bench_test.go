package benchcli

import (
	"bytes"
	"strings"
	"testing"
)

// Bad input is refused with exit status 2 and a message naming the fix,
// before anything is built (no root needed).
func TestBadInputIsRefused(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown benchmark "nosuch"`},
		{[]string{"reschedule", "--rounds", "0"}, "--rounds 0: give at least 1"},
		{[]string{"overlay", "--duration", "0s"}, "--duration 0s: give a positive duration"},
		{[]string{"failover", "--weft", "/nonexistent/weft", "--rounds", "-1"}, "--rounds -1"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(append([]string{"weft-bench"}, tc.args...), &out, &errb); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q, want it to say %q", errb.String(), tc.want)
			}
		})
	}
}

func TestHelpNamesTheBenchmarks(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"weft-bench", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"weft bench [command]", "overlay", "up", "gateway", "failover", "reschedule"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}
