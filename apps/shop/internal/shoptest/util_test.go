package shoptest

import (
	"strconv"
	"testing"
)

func itoa(n int) string { return strconv.Itoa(n) }

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not an integer: %v", s, err)
	}
	return n
}
