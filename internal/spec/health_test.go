package spec

import (
	"testing"
	"time"
)

func TestHealthDefaulted(t *testing.T) {
	got := Health{HTTP: "/health"}.Defaulted()
	if got.Interval.Duration != DefaultHealthInterval || got.Timeout.Duration != DefaultHealthTimeout || got.Retries != DefaultHealthRetries || got.Port != 0 {
		t.Errorf("defaults of an empty check = %+v", got)
	}
	set := Health{TCP: 5432, Interval: Duration{Duration: 5 * time.Second}, Timeout: Duration{Duration: 2 * time.Second}, Retries: 7}
	if got := set.Defaulted(); got.Interval != set.Interval || got.Timeout != set.Timeout || got.Retries != set.Retries {
		t.Errorf("Defaulted changed written values: %+v, want %+v", got, set)
	}
}
