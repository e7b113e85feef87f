package reschedule

import (
	"time"
)

// sample is one request of the probe loop.
type sample struct {
	at   time.Time // when the request was sent
	done time.Time // when its answer (or failure) came
	ok   bool      // 200 within the timeout
}

// outage is what the probe saw around one crash.
type outage struct {
	Requests  int           // sent from the crash until served again
	Failed    int           // of those, failed
	Recovered bool          // requests succeed again (and kept succeeding)
	ServedIn  time.Duration // from the crash to the answer of the first success sent after the last failure
}

// FailedShare is the share of requests that failed from the crash until
// served again.
func (o outage) FailedShare() float64 {
	if o.Requests == 0 {
		return 0
	}
	return float64(o.Failed) / float64(o.Requests)
}

// analyse reads the samples of one run: requests sent before crash are the
// baseline and do not count. Served again is the first success after the
// last failure (in send order), at the time its answer came; a run whose
// last request failed has not recovered.
func analyse(samples []sample, crash time.Time) outage {
	var o outage
	lastFail := -1
	first := -1
	for i, s := range samples {
		if s.at.Before(crash) {
			continue
		}
		if first < 0 {
			first = i
		}
		if !s.ok {
			lastFail = i
		}
	}
	if first < 0 {
		return o
	}
	end := len(samples) // exclusive: requests counted up to and including the recovering one
	switch {
	case lastFail < 0:
		o.Recovered, o.ServedIn, end = true, 0, first+1
	case lastFail+1 < len(samples):
		o.Recovered = true
		o.ServedIn = samples[lastFail+1].done.Sub(crash)
		end = lastFail + 2
	}
	for _, s := range samples[first:end] {
		o.Requests++
		if !s.ok {
			o.Failed++
		}
	}
	return o
}

// settled reports whether the probe may stop: after a failure, requests have
// succeeded for at least hold without interruption.
func settled(samples []sample, crash time.Time, hold time.Duration) bool {
	sawFail := false
	var okSince time.Time
	for _, s := range samples {
		if s.at.Before(crash) {
			continue
		}
		switch {
		case !s.ok:
			sawFail, okSince = true, time.Time{}
		case okSince.IsZero():
			okSince = s.at
		}
	}
	if !sawFail || okSince.IsZero() || len(samples) == 0 {
		return false
	}
	return samples[len(samples)-1].at.Sub(okSince) >= hold
}
