package main

import (
	"encoding/json"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// floodResult is what a flood of commands got back.
type floodResult struct {
	Sent     int
	Took     time.Duration // sending them all
	Results  int           // distinct ids answered
	OK, Busy int
	Other    map[string]int // other refusals by reason
	Dupes    int            // ids answered twice
	Drained  time.Duration  // from the first command to the last result
}

// flood publishes n JSON commands (open, close, stop in turn, each with its
// own id) at QoS 1, evenly spread over span, then waits until every id has a
// result, or until no result came for quiet.
func flood(url, prefix string, n int, span, quiet time.Duration) (floodResult, error) {
	fr := floodResult{Sent: n, Other: map[string]int{}}
	sub, err := client(url, "gatebench-flood-sub")
	if err != nil {
		return fr, err
	}
	defer sub.Disconnect(100)
	results, drops, err := subscribe(sub, prefix+"/result", n+1024)
	if err != nil {
		return fr, err
	}
	pub, err := client(url, "gatebench-flood-pub")
	if err != nil {
		return fr, err
	}
	defer pub.Disconnect(100)

	words := []string{"open", "close", "stop"}
	toks := make([]mqtt.Token, 0, n)
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(span * time.Duration(i) / time.Duration(n))); d > 0 {
			time.Sleep(d)
		}
		b := fmt.Sprintf(`{"command":%q,"id":"f%06d"}`, words[i%len(words)], i)
		toks = append(toks, pub.Publish(prefix+"/command", 1, false, b))
	}
	fr.Took = time.Since(t0)
	seen := make(map[string]bool, n)
	var last time.Time
	timer := time.NewTimer(quiet)
	defer timer.Stop()
collect:
	for len(seen) < n {
		select {
		case m := <-results:
			var r struct {
				ID    string `json:"id"`
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}
			if json.Unmarshal(m.payload, &r) != nil {
				continue
			}
			if seen[r.ID] {
				fr.Dupes++
				continue
			}
			seen[r.ID] = true
			last = m.at
			switch {
			case r.OK:
				fr.OK++
			case r.Error == "busy":
				fr.Busy++
			default:
				fr.Other[r.Error]++
			}
			timer.Reset(quiet)
		case <-timer.C:
			break collect
		}
	}
	fr.Results = len(seen)
	if !last.IsZero() {
		fr.Drained = last.Sub(t0)
	}
	for _, t := range toks {
		if err := wait(t); err != nil {
			return fr, fmt.Errorf("flood publish: %w", err)
		}
	}
	if d := drops.get(); d > 0 {
		return fr, fmt.Errorf("flood: the benchmark's own subscriber dropped %d results", d)
	}
	return fr, nil
}

func (fr floodResult) String() string {
	s := fmt.Sprintf("%d/%d answered (ok %d, busy %d", fr.Results, fr.Sent, fr.OK, fr.Busy)
	for k, v := range fr.Other {
		s += fmt.Sprintf(", %s %d", k, v)
	}
	s += fmt.Sprintf("); sent in %s, last result after %s", ms(fr.Took), ms(fr.Drained))
	if fr.Dupes > 0 {
		s += fmt.Sprintf(", %d duplicate results", fr.Dupes)
	}
	return s
}
