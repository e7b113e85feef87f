package spec

import (
	"encoding/json"
	"testing"
)

// userNSCases are the ways a file can say userns, and what each means.
func userNSCases() []struct {
	name, line string
	want       bool
} {
	return []struct {
		name, line string
		want       bool
	}{
		{"left out: on", "", true},
		{"written true", "    userns: true\n", true},
		{"written false", "    userns: false\n", false},
	}
}

func TestUserNSField(t *testing.T) {
	for _, tc := range userNSCases() {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(edit(t, base, "    command: [./db]\n", "    command: [./db]\n"+tc.line)), "/srv/lab")
			if err != nil {
				t.Fatal(err)
			}
			db := c.Services[1]
			if db.Name != "db" || db.UserNSOn() != tc.want {
				t.Errorf("%s: UserNSOn = %t, want %t", db.Name, db.UserNSOn(), tc.want)
			}
			b, _ := json.Marshal(c)
			var back Cluster
			if err := json.Unmarshal(b, &back); err != nil || back.Services[1].UserNSOn() != tc.want {
				t.Errorf("lost in the stored JSON: %v", err)
			}
		})
	}
	problems := parseProblems(t, edit(t, base, "    command: [./db]\n", "    command: [./db]\n    userns: no-thanks\n"))
	if len(problems) != 1 || problems[0].Field != "services.db.userns" || problems[0].Fix == "" {
		t.Errorf("userns: no-thanks should be one problem naming the field with a fix, got %v", problems)
	}
}

// TestUserNSWithAnImage: an image service runs in a user namespace
// unless it says `userns: false` (its files are unpacked owned in the
// cluster's map); neither setting is a problem.
func TestUserNSWithAnImage(t *testing.T) {
	for _, tc := range userNSCases() {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(edit(t, base, addService(imageService+tc.line)...)), "/srv/lab")
			if err != nil {
				t.Fatalf("an image service with userns %q should validate: %v", tc.line, err)
			}
			web, ok := c.ServiceByName("web")
			if !ok {
				t.Fatal("service web is missing")
			}
			if web.UserNSOn() != tc.want {
				t.Errorf("UserNSOn = %t, want %t", web.UserNSOn(), tc.want)
			}
		})
	}
}
