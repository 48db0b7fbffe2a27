package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dist summarises latency samples.
type dist struct {
	N             int
	Lost          int // samples whose outcome never came
	P50, P99, Max time.Duration
}

// summarise returns the nearest-rank percentiles of samples.
func summarise(samples []time.Duration, lost int) dist {
	d := dist{N: len(samples), Lost: lost}
	if len(samples) == 0 {
		return d
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	d.P50, d.P99, d.Max = rank(s, 0.50), rank(s, 0.99), s[len(s)-1]
	return d
}

// rank is the nearest-rank percentile of sorted s.
func rank(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// figure is one line of the report.
type figure struct {
	Section string // a heading, and nothing else
	Name    string
	Lat     *dist  // a latency, shown with its ratio to the floor's p50
	Value   string // any other figure
	Target  string // "" when there is none
	Met     *bool
	Note    string
}

func met(b bool) *bool { return &b }

// report collects figures as they are measured.
type report struct {
	floor   time.Duration // the floor's p50
	figures []figure
}

func (r *report) add(f figure) { r.figures = append(r.figures, f) }

// section starts a group of figures.
func (r *report) section(title string) { r.add(figure{Section: title}) }

func (r *report) latency(name string, d dist, target string, ok *bool, note string) {
	r.add(figure{Name: name, Lat: &d, Target: target, Met: ok, Note: note})
}

func (r *report) value(name, v, target string, ok *bool, note string) {
	r.add(figure{Name: name, Value: v, Target: target, Met: ok, Note: note})
}

func (r *report) ratio(d time.Duration) string {
	if r.floor <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(d)/float64(r.floor))
}

func verdict(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "met"
	default:
		return "MISSED"
	}
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.3f ms", float64(d)/1e6)
	}
}

// write prints the report as aligned text, or as a Markdown table.
func (r *report) write(w io.Writer, markdown bool) {
	head := []string{"figure", "n", "p50", "p99", "max", "p50/floor", "target", "verdict", "note"}
	type row struct {
		cells   []string
		section bool
		value   bool
	}
	rows := []row{{cells: head}}
	for _, f := range r.figures {
		if f.Section != "" {
			rows = append(rows, row{cells: []string{f.Section}, section: true})
			continue
		}
		c := []string{f.Name, "", "", "", "", "", f.Target, verdict(f.Met), f.Note}
		if f.Lat != nil {
			d := f.Lat
			c[1] = strconv.Itoa(d.N)
			if d.Lost > 0 {
				c[1] += fmt.Sprintf(" (%d lost)", d.Lost)
			}
			if d.N > 0 {
				c[2], c[3], c[4], c[5] = ms(d.P50), ms(d.P99), ms(d.Max), r.ratio(d.P50)
			}
		} else {
			c[2] = f.Value
		}
		rows = append(rows, row{cells: c, value: f.Lat == nil})
	}
	if markdown {
		for i, rw := range rows {
			switch {
			case rw.section:
				fmt.Fprintf(w, "| **%s** |%s\n", rw.cells[0], strings.Repeat(" |", len(head)-1))
			default:
				fmt.Fprintf(w, "| %s |\n", strings.Join(rw.cells, " | "))
			}
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(head)))
			}
		}
		return
	}
	// Text: latencies in aligned columns; other figures on a line each.
	width := make([]int, len(head))
	for _, rw := range rows {
		if rw.section || rw.value {
			continue
		}
		for i, c := range rw.cells {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, rw := range rows {
		c := rw.cells
		switch {
		case rw.section:
			fmt.Fprintf(w, "\n== %s\n", c[0])
		case rw.value:
			line := fmt.Sprintf("%-*s  %s", width[0], c[0], c[2])
			if c[6] != "" {
				line += fmt.Sprintf("  [target %s: %s]", c[6], c[7])
			}
			if c[8] != "" {
				line += "  " + c[8]
			}
			fmt.Fprintln(w, line)
		default:
			var b strings.Builder
			for i, cell := range c {
				if i == len(c)-1 {
					b.WriteString(cell)
					break
				}
				fmt.Fprintf(&b, "%-*s  ", width[i], cell)
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
	}
}

// procStats is what /proc says of one process.
type procStats struct {
	CPUTicks  int64         // utime+stime, in clock ticks
	OnCPU     time.Duration // sum of the tasks' schedstat run time (ns resolution)
	Switches  int64         // voluntary+nonvoluntary context switches of every task
	Threads   int
	RSS, HWM  int64 // VmRSS, VmHWM in bytes
	RssAnon   int64
	Available bool
}

// clkTck is USER_HZ, 100 on every Linux architecture gated targets.
const clkTck = 100

func readProc(pid int) (procStats, error) {
	var s procStats
	base := fmt.Sprintf("/proc/%d", pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return s, err
	}
	ut, st, err := parseStatTimes(string(stat))
	if err != nil {
		return s, err
	}
	s.CPUTicks = ut + st
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return s, err
	}
	kv := parseStatus(string(status))
	s.RSS, s.HWM, s.RssAnon = kv["VmRSS"]*1024, kv["VmHWM"]*1024, kv["RssAnon"]*1024
	tasks, err := filepath.Glob(base + "/task/*")
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t + "/status")
		if err != nil {
			continue // the thread exited
		}
		kv := parseStatus(string(b))
		s.Switches += kv["voluntary_ctxt_switches"] + kv["nonvoluntary_ctxt_switches"]
		s.Threads++
		if b, err := os.ReadFile(t + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				s.OnCPU += time.Duration(ns)
			}
		}
	}
	s.Available = true
	return s, nil
}

// parseStatTimes returns utime and stime (fields 14 and 15) of
// /proc/PID/stat; the command name, field 2, may hold spaces and parentheses.
func parseStatTimes(stat string) (utime, stime int64, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("proc stat %.40q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("proc stat %.40q: %d fields after the name, want at least 13", stat, len(f))
	}
	if utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat utime: %w", err)
	}
	if stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat stime: %w", err)
	}
	return utime, stime, nil
}

// parseStatus returns the numeric fields of /proc/PID/status ("VmRSS:
// 1234 kB" gives VmRSS 1234).
func parseStatus(s string) map[string]int64 {
	kv := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
