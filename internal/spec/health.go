package spec

import "time"

// Defaults of a health check, for the fields the file leaves out (zero).
const (
	DefaultHealthInterval = time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRetries  = 3
)

// Defaulted returns h with Interval, Timeout and Retries set where they are
// zero: the one place their defaults are applied, by ApplyDefaults for the
// file and by the health package for a check that did not come through it.
// Port stays: its default is the service's port, which h does not know.
func (h Health) Defaulted() Health {
	if h.Interval.Duration == 0 {
		h.Interval.Duration = DefaultHealthInterval
	}
	if h.Timeout.Duration == 0 {
		h.Timeout.Duration = DefaultHealthTimeout
	}
	if h.Retries == 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}
