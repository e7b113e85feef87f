package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestMoneyIsExactToTheCent(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"899.99", "899.99"}, {"0.1", "0.10"}, {"100", "100.00"}, {"19.999", "20.00"}, {"-3.5", "-3.50"}, {"0.005", "0.01"},
	} {
		m, err := ParseMoney(c.in)
		if err != nil {
			t.Fatalf("ParseMoney(%q): %v", c.in, err)
		}
		if m.String() != c.want {
			t.Errorf("ParseMoney(%q) = %s, want %s", c.in, m, c.want)
		}
	}
	for _, bad := range []string{"abc", "NaN", "Inf", "1e20", ""} {
		if _, err := ParseMoney(bad); err == nil {
			t.Errorf("ParseMoney(%q) accepted", bad)
		}
	}
	headphones, _ := ParseMoney("249.99")
	watch, _ := ParseMoney("179.99")
	total, err := json.Marshal(headphones + 2*watch)
	if err != nil || string(total) != "609.97" {
		t.Errorf("249.99 + 2 x 179.99 marshals as %s (%v), want 609.97", total, err)
	}
}

func TestObjectIDs(t *testing.T) {
	id := NewObjectID()
	if !IsObjectID(id) || len(id) != 24 {
		t.Errorf("NewObjectID() = %q is not 24 hex characters", id)
	}
	if id == NewObjectID() {
		t.Error("two ids are equal")
	}
	for _, bad := range []string{"", "abc", "zzzzzzzzzzzzzzzzzzzzzzzz", id + "0"} {
		if IsObjectID(bad) {
			t.Errorf("IsObjectID(%q) = true", bad)
		}
	}
}

func TestValidationNamesEveryBadField(t *testing.T) {
	body, err := ParseObject([]byte(`{"name": 5, "price": "x", "qty": -1, "items": [{"id": "nope"}], "ok": "fine"}`))
	if err != nil {
		t.Fatal(err)
	}
	body.String("name", true, 0)
	body.Money("price", true)
	body.Int("qty", true, 0)
	body.String("missing", true, 0)
	if items, ok := body.Objects("items", true); ok {
		items[0].ObjectID("id", true)
	}
	if s, ok := body.String("ok", true, 0); !ok || s != "fine" {
		t.Errorf("valid field read as %q, %v", s, ok)
	}
	var validation *ValidationError
	if err := body.Err(); !errors.As(err, &validation) {
		t.Fatalf("Err() = %v, want a *ValidationError", err)
	}
	want := []string{"[body name]", "[body price]", "[body qty]", "[body missing]", "[body items 0 id]"}
	if len(validation.Fields) != len(want) {
		t.Fatalf("fields = %+v, want %v", validation.Fields, want)
	}
	for i, f := range validation.Fields {
		if got := fmt.Sprint(f.Loc); got != want[i] {
			t.Errorf("field %d loc = %s, want %s", i, got, want[i])
		}
	}
	for _, raw := range []string{`{"a":`, `[1]`, `{"a":1} {"b":2}`, ``} {
		if _, err := ParseObject([]byte(raw)); err == nil {
			t.Errorf("ParseObject(%q) accepted", raw)
		}
	}
}
