package spec

import (
	"encoding/json"
	"testing"
)

func TestUserNSField(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       bool
	}{
		{"left out: on", "", true},
		{"written true", "    userns: true\n", true},
		{"written false", "    userns: false\n", false},
	} {
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

func TestUserNSWithAnImage(t *testing.T) {
	// Left out: off for an image.
	c, err := Parse([]byte(edit(t, base, addService(imageService)...)), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Services {
		if s.Name == "web" && s.UserNSOn() {
			t.Error("an image service should run without a user namespace by default")
		}
	}
	// Asked for: refused, naming the field.
	problems := parseProblems(t, edit(t, base, addService(imageService+"    userns: true\n")...))
	if len(problems) != 1 || problems[0].Field != "services.web.userns" || problems[0].Fix == "" {
		t.Errorf("userns: true with an image should be one problem naming the field, got %v", problems)
	}
}
