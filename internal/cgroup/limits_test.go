package cgroup

import (
	"slices"
	"testing"
)

func TestLimitWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
		want []fileWrite
		ctl  []string
	}{
		{"none", Limits{}, nil, nil},
		{"pids", Limits{Pids: 64}, []fileWrite{{"pids", "pids.max", "64"}}, nil},
		{"memory, no swap past it", Limits{MemoryBytes: 1 << 20}, []fileWrite{
			{"memory", "memory.memsw.limit_in_bytes", "-1"},
			{"memory", "memory.limit_in_bytes", "1048576"},
			{"memory", "memory.memsw.limit_in_bytes", "1048576"},
		}, []string{"memory"}},
		{"half a core", Limits{CPU: 0.5}, []fileWrite{{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "50000"}}, []string{"cpu"}},
		{"tiny cpu rounds up to the kernel's 1ms", Limits{CPU: 0.001}, []fileWrite{{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "1000"}}, []string{"cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.writes(); !slices.Equal(got, tc.want) {
				t.Errorf("writes = %v, want %v", got, tc.want)
			}
			if got := tc.l.controllers(); !slices.Equal(got, tc.ctl) {
				t.Errorf("controllers = %v, want %v", got, tc.ctl)
			}
		})
	}
}
