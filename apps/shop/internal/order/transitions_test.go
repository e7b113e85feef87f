package order

import (
	"slices"
	"testing"
)

func TestTransitions(t *testing.T) {
	legal := map[string][]string{
		StatusPending:    {StatusPaid, StatusCancelled},
		StatusPaid:       {StatusProcessing, StatusCancelled, StatusRefunded},
		StatusProcessing: {StatusShipped, StatusCancelled, StatusRefunded},
		StatusShipped:    {StatusDelivered, StatusRefunded},
		StatusDelivered:  {StatusRefunded},
		StatusCancelled:  nil,
		StatusRefunded:   nil,
	}
	for from, want := range legal {
		if got := AllowedTransitions(from); !slices.Equal(got, want) {
			t.Errorf("AllowedTransitions(%s) = %v, want %v", from, got, want)
		}
	}
	for _, c := range []struct {
		from, to string
		release  bool
	}{
		{StatusPending, StatusCancelled, true},
		{StatusPaid, StatusRefunded, true},
		{StatusProcessing, StatusCancelled, true},
		{StatusShipped, StatusRefunded, false},
		{StatusPending, StatusPaid, false},
	} {
		if got := releasesStock(c.from, c.to); got != c.release {
			t.Errorf("releasesStock(%s, %s) = %v, want %v", c.from, c.to, got, c.release)
		}
	}
}
