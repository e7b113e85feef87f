package spec

import "testing"

func TestVNIInRange(t *testing.T) {
	for vni, want := range map[int]bool{-1: false, 0: false, 1: true, 444: true, 16777215: true, 16777216: false} {
		if got := VNIInRange(vni); got != want {
			t.Errorf("VNIInRange(%d) = %t, want %t", vni, got, want)
		}
	}
}
