package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/store"
)

func TestFaultStatuses(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	body := func(r fault.Record) json.RawMessage {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	recs := map[string]store.FaultRecord{
		"b": {ID: "b", Kind: "kill", Expires: t0.Add(time.Minute), Body: body(fault.Record{Target: "web", Mechanism: "SIGKILL", Created: t0.Add(time.Second)})},
		"a": {ID: "a", Kind: "loss", Expires: t0.Add(time.Minute), Body: body(fault.Record{Target: "host1", Mechanism: "nftables numgen", Created: t0})},
		"c": {ID: "c", Kind: "latency", Expires: t0.Add(time.Hour), Body: json.RawMessage(`"not a record"`)},
	}
	got := faultStatuses(recs)
	if len(got) != 3 {
		t.Fatalf("faultStatuses: %+v", got)
	}
	// The undecodable one has no creation time: first; then by creation.
	if got[0].ID != "c" || got[0].Kind != "latency" || got[0].Target != "" || !got[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("undecodable body: %+v", got[0])
	}
	if got[1].ID != "a" || got[1].Target != "host1" || got[1].Mechanism != "nftables numgen" || !got[1].Created.Equal(t0) {
		t.Errorf("first fault: %+v", got[1])
	}
	if got[2].ID != "b" || got[2].Kind != "kill" || got[2].Target != "web" {
		t.Errorf("second fault: %+v", got[2])
	}
}
