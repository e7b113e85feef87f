package runtime

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/weft-dev/weft/internal/spec"
)

func TestExtraReadOnly(t *testing.T) {
	exists := func(p string) bool { return p != "/missing" }
	links := map[string]string{"/opt/bin/tool": "/srv/real/tool", "/work/bin/weft": "/work/bin/weft"}
	eval := func(p string) (string, error) {
		if r, ok := links[p]; ok {
			return r, nil
		}
		return "", errors.New("no such file")
	}
	for _, tc := range []struct {
		name    string
		command []string
		workdir string
		want    []string
	}{
		{"system program", []string{"sleep", "1"}, "", nil},
		{"absolute system program", []string{"/usr/bin/sleep"}, "", nil},
		{"checkout binary", []string{"/work/bin/weft", "gateway"}, "", []string{"/work/bin"}},
		{"symlinked binary shows both dirs", []string{"/srv/links/tool"}, "", []string{"/srv/links"}},
		{"symlink below /opt", []string{"/opt/bin/tool"}, "", []string{"/srv/real"}},
		{"workdir", []string{"sh"}, "/srv/app", []string{"/srv/app"}},
		{"nested workdir merged", []string{"/srv/app/bin/x"}, "/srv/app", []string{"/srv/app"}},
		{"missing workdir", []string{"sh"}, "/missing", nil},
		{"root workdir", []string{"sh"}, "/", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := extraReadOnly(tc.command, tc.workdir, exists, eval); !slices.Equal(got, tc.want) {
				t.Errorf("extraReadOnly(%v, %q) = %v, want %v", tc.command, tc.workdir, got, tc.want)
			}
		})
	}
}

func TestDefaultCapabilitiesMask(t *testing.T) {
	// CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
	// SETUID 7, NET_BIND_SERVICE 10; none of SYS_ADMIN, NET_ADMIN, NET_RAW,
	// SYS_PTRACE, SYS_MODULE, MKNOD.
	if got := capMask(DefaultCapabilities); got != 0x4fb {
		t.Errorf("capMask = %#x, want 0x4fb", got)
	}
}

func TestSeccompPolicyAssembles(t *testing.T) {
	p := defaultSeccompPolicy()
	insts, err := p.Assemble()
	if err != nil {
		t.Fatalf("assembling the default policy: %v", err)
	}
	if _, err := bpf.Assemble(insts); err != nil {
		t.Fatalf("assembling BPF: %v", err)
	}
	for _, must := range []string{"mount", "unshare", "setns", "ptrace", "bpf", "keyctl", "userfaultfd", "kexec_load", "init_module", "pivot_root"} {
		if !slices.Contains(deniedSyscalls, must) {
			t.Errorf("%s is not denied", must)
		}
	}
}

func TestParseStatusIDs(t *testing.T) {
	status := "Name:\tsleep\nUid:\t65534\t65534\t65534\t65534\nGid:\t65533\t65533\t65533\t65533\nGroups:\t65533 27 \n"
	uid, gid, groups, err := parseStatusIDs(status)
	if err != nil || uid != 65534 || gid != 65533 || !slices.Equal(groups, []int{65533, 27}) {
		t.Errorf("parseStatusIDs = %d %d %v %v", uid, gid, groups, err)
	}
	if _, _, _, err := parseStatusIDs("Name:\tx\n"); err == nil {
		t.Error("a status without Uid/Gid parsed")
	}
}

func TestParseCgroups(t *testing.T) {
	in := "13:pids:/weft.c/h/c/api-1\n12:cpu,cpuacct:/weft.c/h/c/api-1\n9:memory:/weft.c/h/c/api-1\n4:freezer:/weft.c/h/c/api-1\n3:devices:/\n0::/\n"
	got := parseCgroups(in, execControllers)
	want := []string{"cpu:/weft.c/h/c/api-1", "freezer:/weft.c/h/c/api-1", "memory:/weft.c/h/c/api-1", "pids:/weft.c/h/c/api-1"}
	if !slices.Equal(got, want) {
		t.Errorf("parseCgroups = %v, want %v", got, want)
	}
}

func TestResourcesOf(t *testing.T) {
	if got := ResourcesOf(spec.Service{}); got != (Resources{Pids: spec.DefaultPids}) {
		t.Errorf("no resources: %+v, want the default pids only", got)
	}
	svc := spec.Service{Resources: &spec.Resources{Memory: 64 << 20, CPU: 0.5, Pids: 100}}
	if got := ResourcesOf(svc); got != (Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 100}) {
		t.Errorf("ResourcesOf = %+v", got)
	}
	a, b := Config{Container: "x"}, Config{Container: "x", Resources: Resources{Pids: 10}}
	if a.Hash() == b.Hash() {
		t.Error("a pids limit does not change the config hash")
	}
}
