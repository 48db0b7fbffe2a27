package position

import (
	"encoding/json"
	"fmt"
	"time"
)

// Samples are the learned travel times: the durations of the last full runs
// each way, oldest first, at most MaxSamples each. They are what gated keeps
// across restarts; as JSON they read {"open":["11.92s"],"close":["10.4s"]}.
type Samples struct {
	Open  []time.Duration
	Close []time.Duration
}

// Samples returns the learned full runs, for the state file and for
// gatectl status.
func (e Estimator) Samples() Samples {
	return Samples{Open: e.opens.list(), Close: e.closes.list()}
}

// SetSamples replaces the learned full runs with s, typically read back from
// the state file at start-up. It refuses (and changes nothing) when s has
// more than MaxSamples runs a way or a run outside (0, MaxTravel]: such a
// file is corrupt and the gate learns again.
func (e *Estimator) SetSamples(s Samples) error {
	var opens, closes samples
	for _, c := range []struct {
		way string
		in  []time.Duration
		out *samples
	}{{"open", s.Open, &opens}, {"close", s.Close, &closes}} {
		if len(c.in) > MaxSamples {
			return fmt.Errorf("position: %d %s samples, at most %d", len(c.in), c.way, MaxSamples)
		}
		for _, d := range c.in {
			if d <= 0 || d > MaxTravel {
				return fmt.Errorf("position: %s sample %v outside (0, %v]", c.way, d, MaxTravel)
			}
			c.out.push(d)
		}
	}
	e.opens, e.closes = opens, closes
	return nil
}

// samplesJSON writes durations as Go duration strings, for people reading
// the state file.
type samplesJSON struct {
	Open  []string `json:"open"`
	Close []string `json:"close"`
}

// MarshalJSON implements json.Marshaler.
func (s Samples) MarshalJSON() ([]byte, error) {
	j := samplesJSON{Open: []string{}, Close: []string{}}
	for _, d := range s.Open {
		j.Open = append(j.Open, d.String())
	}
	for _, d := range s.Close {
		j.Close = append(j.Close, d.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler. It checks only the syntax;
// SetSamples checks the values.
func (s *Samples) UnmarshalJSON(b []byte) error {
	var j samplesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("position: samples: %w", err)
	}
	var out Samples
	for _, c := range []struct {
		in  []string
		out *[]time.Duration
	}{{j.Open, &out.Open}, {j.Close, &out.Close}} {
		for _, v := range c.in {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("position: samples: %w", err)
			}
			*c.out = append(*c.out, d)
		}
	}
	*s = out
	return nil
}
