package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxSeconds is the longest duration written as a bare number of seconds
// that time.Duration holds (about 292 years).
const maxSeconds = int64(math.MaxInt64 / int64(time.Second))

// parseDuration reads "500ms", "2s", "1m30s"; a bare integer means seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > maxSeconds || n < -maxSeconds {
			return 0, fmt.Errorf("%s seconds is too long a duration (at most %d)", s, maxSeconds)
		}
		return time.Duration(n) * time.Second, nil
	} else if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s seconds is too long a duration (at most %d)", s, maxSeconds)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.Contains(err.Error(), "invalid duration") {
			return 0, fmt.Errorf("%q is not a duration; write it like 500ms, 2s or 1m (a bare number means seconds)", s)
		}
		return 0, fmt.Errorf("%q is not a usable duration (%v)", s, err)
	}
	return d, nil
}

// UnmarshalYAML reads a duration scalar.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("a duration must be a single value like 500ms or 2s")
	}
	parsed, err := parseDuration(value.Value)
	if err != nil {
		return err
	}
	d.Duration = parsed
	return nil
}

// MarshalJSON writes the duration as a string like "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a string like "1.5s" or a number of seconds.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var seconds float64
		if err := json.Unmarshal(data, &seconds); err != nil {
			return fmt.Errorf("a duration must be a string like \"500ms\" or a number of seconds, not %s", data)
		}
		if seconds != seconds || seconds > float64(maxSeconds) || seconds < -float64(maxSeconds) {
			return fmt.Errorf("a duration of %s seconds is out of range (at most %d)", data, maxSeconds)
		}
		d.Duration = time.Duration(seconds * float64(time.Second))
		return nil
	}
	parsed, err := parseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = parsed
	return nil
}
