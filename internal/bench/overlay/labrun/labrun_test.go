package labrun

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- {
		samples = append(samples, time.Duration(i)*time.Microsecond)
	}
	if got := Percentile(samples, 50); got != 50*time.Microsecond {
		t.Errorf("p50 = %v, want 50µs", got)
	}
	if got := Percentile(samples, 99); got != 99*time.Microsecond {
		t.Errorf("p99 = %v, want 99µs", got)
	}
	if got := Percentile(samples, 100); got != 100*time.Microsecond {
		t.Errorf("p100 = %v, want 100µs", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

func TestMedianAndRatio(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 1 2 = %v", got)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median of 4 1 2 3 = %v", got)
	}
	if got := Ratio(1, 0); got != 0 {
		t.Errorf("ratio over 0 = %v, want 0 (shown as missing)", got)
	}
	if got := FormatRatio(Ratio(2, 3)); got != "0.667" {
		t.Errorf("2/3 shows as %s", got)
	}
}

func TestListeningIn(t *testing.T) {
	const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0A0A0001:1452 0A0A0002:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`
	if !listeningIn(procNetTCP, 5201) {
		t.Error("port 5201 (0x1451) is listening, not found")
	}
	if listeningIn(procNetTCP, 5202) {
		t.Error("port 5202 has only an established connection, reported listening")
	}
}

func TestRandomSuffix(t *testing.T) {
	a, b := RandomSuffix(4), RandomSuffix(4)
	if len(a) != 4 || a == b && RandomSuffix(4) == a {
		t.Errorf("suffixes %q %q are not 4 random hex digits", a, b)
	}
}
