package spec

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: whatever the bytes, Parse returns either a cluster or Problems
// (never a panic, never another kind of error), and a cluster it accepts
// validates clean again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile("testdata/hello.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 0\nname: x\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("services:\n  <<: {web: {command: [x]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "/srv/lab")
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error is not Problems: %T %v", err, err)
			}
			if c != nil {
				t.Fatal("Parse returned a cluster with problems")
			}
			return
		}
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatalf("an accepted file does not validate again: %v", ps)
		}
	})
}
