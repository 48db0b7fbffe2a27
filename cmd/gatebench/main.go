// Command gatebench measures gated against a real mosquitto and a real
// dbus-daemon that it starts itself, and prints every figure with its ratio
// to the floor: a bare MQTT round trip through the same broker.
//
// Run it from the repository root (it builds ./cmd/gated):
//
//	go run ./cmd/gatebench [-n 1000] [-warmup 100] [-idle 60s] [-flood 10000] [-markdown]
//
// It exits 1 only when it could not measure; a missed target is reported,
// not an error. BENCHMARKS.md explains every figure.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

type options struct {
	n, warmup  int
	idle       time.Duration
	settle     time.Duration
	floodN     int
	floodSpan  time.Duration
	startups   int
	sizes      bool
	markdown   bool
	cpuprofile string
	gomaxprocs int
	coldN      int
	pathOnly   bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "samples per latency figure (warm-up excluded)")
	flag.IntVar(&o.warmup, "warmup", 100, "samples discarded before each latency figure")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "how long the idle gated is watched")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "wait after start-up before the idle window")
	flag.IntVar(&o.floodN, "flood", 10000, "commands in the flood")
	flag.DurationVar(&o.floodSpan, "flood-span", time.Second, "the flood is spread over this long")
	flag.IntVar(&o.startups, "startups", 5, "times gated is started to time its start-up")
	flag.BoolVar(&o.sizes, "sizes", true, "cross-build gated for amd64, arm64 and armhf and report the sizes")
	flag.BoolVar(&o.markdown, "markdown", false, "print the figures as a Markdown table")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write gatebench's CPU profile (the in-process gate and links included) to `FILE`")
	flag.IntVar(&o.gomaxprocs, "gated-gomaxprocs", 0, "run gated (and the echo relay) with GOMAXPROCS=`N` (0: Go's default, one per CPU)")
	flag.IntVar(&o.coldN, "cold-n", 300, "samples of each cold command-path figure (at most -n; each takes 2 x 400 ms)")
	flag.BoolVar(&o.pathOnly, "command-path-only", false, "measure only the floor and the command path against gated and the echo relay")
	echoURL := flag.String("echo-relay", "", "run as the echo relay on broker `URL` (gatebench starts it itself)")
	flag.Parse()
	if *echoURL != "" {
		if err := runEchoRelay(*echoURL); err != nil {
			fmt.Fprintf(os.Stderr, "gatebench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "gatebench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options, w io.Writer) error {
	if o.n < 1 || o.warmup < 0 || o.floodN < 1 || o.startups < 1 || o.coldN < 1 {
		return errors.New("-n, -cold-n, -flood and -startups must be positive, -warmup not negative")
	}
	// Every loop alternates open and stop (obstruct and clear): an even
	// total leaves the gate stopped (and clear) for the next loop.
	if (o.n+o.warmup)%2 == 1 {
		o.warmup++
	}
	if _, err := os.Stat("cmd/gated/main.go"); err != nil {
		return errors.New("run gatebench from the repository root: it builds ./cmd/gated")
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	header(w)
	fmt.Fprintf(w, "flags: -n %d -cold-n %d -warmup %d -idle %s -settle %s -flood %d -flood-span %s -startups %d -gated-gomaxprocs %d -command-path-only=%t\n\n",
		o.n, o.coldN, o.warmup, o.idle, o.settle, o.floodN, o.floodSpan, o.startups, o.gomaxprocs, o.pathOnly)

	dir, err := os.MkdirTemp("", "gatebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := startBroker(dir)
	if err != nil {
		return err
	}
	defer b.stop()

	r := &report{}
	step := func(s string) { fmt.Fprintf(os.Stderr, "gatebench: %s\n", s) }

	step("floor")
	floor, err := measureFloor(b.URL, o.warmup, o.n)
	if err != nil {
		return err
	}
	if floor.N == 0 {
		return errors.New("floor: no sample arrived")
	}
	r.floor = floor.P50
	r.section("floor")
	r.latency("floor: MQTT publish -> broker -> subscriber, QoS 1", floor, "", nil, "one hop; the unit of every ratio")

	// Each part has a bus of its own, so that the in-process links and the
	// daemon never meet on one.
	parts := []func(o options, r *report, b *broker, dir, busAddr string, step func(string)) error{inProcess, daemonFigures}
	if o.pathOnly {
		parts = parts[1:]
	}
	for _, part := range parts {
		bus, err := startBus(dir)
		if err != nil {
			return err
		}
		err = part(o, r, b, dir, bus.Address, step)
		bus.Stop()
		if err != nil {
			return err
		}
	}
	if o.sizes && !o.pathOnly {
		step("binary sizes")
		r.section("binary sizes")
		for _, a := range []struct{ arch, arm, name string }{{"amd64", "", "amd64"}, {"arm64", "", "arm64"}, {"arm", "6", "armhf (GOARM=6)"}} {
			p, err := build(dir, a.arch, a.arm)
			if err != nil {
				return err
			}
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			r.value("binary size gated "+a.name, mib(fi.Size()), "", nil, fmt.Sprintf("%d bytes, CGO_ENABLED=0 -trimpath -ldflags '-s -w'", fi.Size()))
		}
	}
	step("floor again")
	floor2, err := measureFloor(b.URL, o.warmup, o.n)
	if err != nil {
		return err
	}
	r.latency("floor again, at the end (drift check)", floor2, "", nil, "ratios use the first floor")

	fmt.Fprintln(w)
	r.write(w, o.markdown)
	fmt.Fprintf(w, "\nload average at the end: %s\n", loadavg())
	return nil
}

func inProcess(o options, r *report, b *broker, dir, busAddr string, step func(string)) error {
	step("in-process gate, MQTT and D-Bus links on the simulator")
	rg, err := startRig(b.URL, busAddr)
	if err != nil {
		return err
	}
	defer rg.stop()

	step("MQTT commands")
	relay, status, result, signal := rg.mqttCommands(o.warmup, o.n)
	lost := relay.Lost + status.Lost
	r.section("gated's gate and links in this process, on the simulator (the relay is observable)")
	r.latency("MQTT command -> motor relay", relay, "p50 < 1 ms", met(relay.N > 0 && relay.P50 < time.Millisecond), "broker hop in; the relay as the simulator sees it")
	r.latency("MQTT command -> status on MQTT", status, "p50 <= 2.5x floor", met(status.N > 0 && float64(status.P50) <= 2.5*float64(r.floor)), "two broker hops")
	r.latency("MQTT command -> result on MQTT", result, "", nil, "")
	r.latency("MQTT command -> StatusChanged on D-Bus", signal, "", nil, "")

	step("D-Bus commands")
	reply, drelay, dsig, dstatus, err := rg.dbusCommands(o.warmup, o.n)
	if err != nil {
		return err
	}
	r.latency("D-Bus Open/Stop call -> method reply", reply, "", nil, "")
	r.latency("D-Bus Open/Stop call -> motor relay", drelay, "p50 < 1 ms", met(drelay.N > 0 && drelay.P50 < time.Millisecond), "")
	r.latency("D-Bus call -> StatusChanged on D-Bus", dsig, "", nil, "")
	r.latency("D-Bus call -> status on MQTT", dstatus, "", nil, "")

	step("input edges")
	em, ed, err := rg.inputEdges(o.warmup, o.n)
	if err != nil {
		return err
	}
	r.latency("input edge (photo eye) -> status on MQTT", em, "", nil, "debounce 0; gated's default 30 ms adds to it by design")
	r.latency("input edge (photo eye) -> StatusChanged on D-Bus", ed, "", nil, "debounce 0")
	lost += em.Lost + ed.Lost + drelay.Lost + dsig.Lost

	step(fmt.Sprintf("flood of %d commands, in process", o.floodN))
	rt := sampleRuntime()
	fr, err := flood(b.URL, rg.prefix, o.floodN, o.floodSpan, 10*time.Second)
	goroutines, heap := rt()
	if err != nil {
		return err
	}
	st, err := finalStatus(b.URL, rg.prefix)
	snap := rg.sim.Snapshot()
	ok := fr.Results == fr.Sent && err == nil && sane(st) == nil && snap.Shorts == 0
	note := fmt.Sprintf("final %s; sim shorts %d; this process (gate, links and clients) peaked at %d goroutines, %s of heap", st.State, snap.Shorts, goroutines, mib(int64(heap)))
	if err != nil {
		note += "; " + err.Error()
	} else if e := sane(st); e != nil {
		note += "; " + e.Error()
	}
	r.value("flood in process: results", fr.String(), "every command answered, no short, sane", met(ok), note)
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "gatebench: %d latency samples never got their outcome (see the n column)\n", lost)
	}
	return nil
}

func daemonFigures(o options, r *report, b *broker, dir, busAddr string, step func(string)) error {
	step("building gated")
	bin, err := build(dir, runtime.GOARCH, "")
	if err != nil {
		return err
	}
	conf, err := writeDaemonConfig(dir, b.URL, busAddr)
	if err != nil {
		return err
	}
	watcher, err := client(b.URL, "gatebench-watcher")
	if err != nil {
		return err
	}
	defer watcher.Disconnect(100)
	status, _, err := subscribe(watcher, daemonPrefix+"/status", 1024)
	if err != nil {
		return err
	}

	step(fmt.Sprintf("starting gated %d times", o.startups))
	var ready, first, stops series
	var d *daemon
	for i := range o.startups {
		var su startup
		d, su, err = launch(bin, conf, dir, i, o.gomaxprocs, watcher, status)
		if err != nil {
			return err
		}
		ready.s = append(ready.s, su.ready)
		first.s = append(first.s, su.status)
		if i == o.startups-1 {
			break // this one stays for the idle and flood figures
		}
		took, code, err := d.stop()
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("gated exited %d on SIGTERM: %s", code, d.log())
		}
		stops.s = append(stops.s, took)
	}
	defer func() {
		if d.alive() {
			d.stop()
		}
	}()
	r.section("the gated binary: start-up, idle, flood")
	r.latency("start-up: exec -> READY=1", ready.dist(), "", nil, "sim driver, D-Bus name owned")
	r.latency("start-up: exec -> first status on the broker", first.dist(), "", nil, "MQTT connects in the background")
	if len(stops.s) > 0 {
		r.latency("stop: SIGTERM -> exit 0", stops.dist(), "", nil, "offline published, outputs off")
	}

	if o.pathOnly {
		time.Sleep(o.settle)
		u, err := newUsers(b.URL, busAddr, daemonPrefix, "gatebench-daemon")
		if err != nil {
			return err
		}
		defer u.close()
		return commandPathFigures(o, r, b, u, step)
	}

	step(fmt.Sprintf("gated idle: settling %s, then watching it for %s", o.settle, o.idle))
	time.Sleep(o.settle)
	before, err := readProc(d.pid())
	if err != nil {
		return err
	}
	pings0 := d.pings.get()
	t0 := time.Now()
	time.Sleep(o.idle)
	after, err := readProc(d.pid())
	if err != nil {
		return err
	}
	el := time.Since(t0)
	pings := d.pings.get() - pings0
	cpuTicks := after.CPUTicks - before.CPUTicks
	cpuPct := float64(cpuTicks) / clkTck / el.Seconds() * 100
	onCPU := after.OnCPU - before.OnCPU
	onPct := onCPU.Seconds() / el.Seconds() * 100
	wakes := float64(after.Switches-before.Switches) / el.Seconds()
	r.value("idle: CPU (utime+stime)", fmt.Sprintf("%.3f %% of a core", cpuPct), "< 0.1 %", met(cpuPct < 0.1),
		fmt.Sprintf("%d ticks of 10 ms in %s", cpuTicks, ms(el)))
	r.value("idle: CPU (schedstat run time)", fmt.Sprintf("%.4f %% of a core", onPct), "< 0.1 %", met(onPct < 0.1),
		fmt.Sprintf("%s on CPU in %s, ns resolution", ms(onCPU), ms(el)))
	r.value("idle: wake-ups (ctxt switches, all threads)", fmt.Sprintf("%.2f /s", wakes), "keepalive and watchdog only", nil,
		fmt.Sprintf("%d switches, %d threads; %d watchdog pings (%.2f /s)", after.Switches-before.Switches, after.Threads, pings, float64(pings)/el.Seconds()))
	r.value("idle: resident memory (VmRSS)", mib(after.RSS), "< 15 MiB", met(after.RSS < 15<<20),
		fmt.Sprintf("RssAnon %s, VmHWM %s", mib(after.RssAnon), mib(after.HWM)))

	step("latency against gated")
	u, err := newUsers(b.URL, busAddr, daemonPrefix, "gatebench-daemon")
	if err != nil {
		return err
	}
	_, dstatus, dresult, dsignal := u.mqttCommands(o.warmup, o.n)
	_, _, bsig, bstatus, err := u.dbusCommands(o.warmup, o.n)
	if err != nil {
		u.close()
		return err
	}
	r.section("the gated binary (sim driver), as users see it")
	r.latency("MQTT command -> status on MQTT", dstatus, "p50 <= 2.5x floor", met(dstatus.N > 0 && float64(dstatus.P50) <= 2.5*float64(r.floor)), "two broker hops")
	r.latency("MQTT command -> result on MQTT", dresult, "", nil, "")
	r.latency("MQTT command -> StatusChanged on D-Bus", dsignal, "", nil, "")
	r.latency("D-Bus call -> StatusChanged on D-Bus", bsig, "", nil, "")
	r.latency("D-Bus call -> status on MQTT", bstatus, "", nil, "")
	err = commandPathFigures(o, r, b, u, step)
	u.close()
	if err != nil {
		return err
	}

	step(fmt.Sprintf("flood of %d commands to gated", o.floodN))
	peak := int64(0)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if p, err := readProc(d.pid()); err == nil {
				peak = max(peak, p.RSS)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()
	fr, ferr := flood(b.URL, daemonPrefix, o.floodN, o.floodSpan, 10*time.Second)
	close(stopSampling)
	<-sampled
	if ferr != nil {
		return ferr
	}
	st, serr := finalStatus(b.URL, daemonPrefix)
	time.Sleep(2 * time.Second)
	post, perr := readProc(d.pid())
	alive := d.alive()
	errs := errorLines(d.log())
	ok := fr.Results == fr.Sent && serr == nil && sane(st) == nil && alive && perr == nil && len(errs) == 0
	note := fmt.Sprintf("final %s", st.State)
	if serr != nil {
		note += "; " + serr.Error()
	} else if e := sane(st); e != nil {
		note += "; " + e.Error()
	}
	if !alive {
		note += "; gated DIED: " + d.log()
	}
	if len(errs) > 0 {
		note += fmt.Sprintf("; %d error lines, first: %s", len(errs), errs[0])
	}
	r.value("flood to gated: results", fr.String(), "every command answered, sane, alive", met(ok), note)
	if perr == nil {
		bounded := peak < 32<<20 && post.RSS < before.RSS+8<<20
		r.value("flood to gated: memory", fmt.Sprintf("RSS %s before, peak %s, %s 2 s after", mib(after.RSS), mib(peak), mib(post.RSS)),
			"peak < 32 MiB, after < before + 8 MiB", met(bounded), fmt.Sprintf("VmHWM %s (sampled every 5 ms)", mib(post.HWM)))
	}
	took, code, err := d.stop()
	if err != nil {
		return err
	}
	r.value("flood to gated: clean stop after", fmt.Sprintf("exit %d in %s", code, ms(took)), "exit 0", met(code == 0), "")
	return nil
}

// commandPathFigures times command → status against the running gated and
// the echo relay, interleaved, hot (back to back) and cold (after coldGap
// of idle each), and judges gated against the relay: p50 within 1.25 x.
func commandPathFigures(o options, r *report, b *broker, u *users, step func(string)) error {
	relay, err := startEchoRelay(b.URL, o.gomaxprocs)
	if err != nil {
		return err
	}
	defer relay.stop()
	r.section("command -> status: the gated binary against the echo relay (a paho client that publishes each command straight back), interleaved")
	coldN := min(o.coldN, o.n)
	for _, c := range []struct {
		name string
		n    int
		gap  time.Duration
	}{{"hot (back to back)", o.n, 0}, {fmt.Sprintf("cold (%s idle before each)", coldGap), coldN, coldGap}} {
		step("command path, " + c.name)
		warm := o.warmup
		if c.gap > 0 {
			warm = min(warm, 10) // a cold sample takes 2 gaps
		}
		if (warm+c.n)%2 == 1 {
			warm++ // open and stop alternate: leave the gate stopped
		}
		g, e, err := commandPath(u, b.URL, relay, warm, c.n, c.gap)
		if err != nil {
			return err
		}
		ratio := "-"
		if e.P50 > 0 {
			ratio = fmt.Sprintf("%.2fx echo at p50, %.2fx at p99", float64(g.P50)/float64(e.P50), float64(g.P99)/float64(e.P99))
		}
		r.latency("echo relay, "+c.name, e, "", nil, "the floor of command -> status: two broker hops")
		r.latency("gated: MQTT command -> status, "+c.name, g, "p50 <= 1.25x echo", met(g.N > 0 && e.N > 0 && float64(g.P50) <= 1.25*float64(e.P50)), ratio)
	}
	return nil
}

func header(w io.Writer) {
	fmt.Fprintf(w, "gatebench %s\n", time.Now().UTC().Format(time.RFC3339))
	if out, err := exec.Command("uname", "-a").Output(); err == nil {
		fmt.Fprintf(w, "uname: %s", out)
	}
	fmt.Fprintf(w, "cpu: %s (%d CPUs visible to Go)\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if out, err := exec.Command("sh", "-c", "mosquitto -h 2>/dev/null | head -1; /usr/sbin/mosquitto -h 2>/dev/null | head -1; dbus-daemon --version | head -1").Output(); err == nil {
		lines := slices.DeleteFunc(strings.Split(strings.TrimSpace(string(out)), "\n"), func(s string) bool { return s == "" })
		fmt.Fprintf(w, "peers: %s\n", strings.Join(slices.Compact(lines), "; "))
	}
	fmt.Fprintf(w, "load average at the start: %s\n", loadavg())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// sampleRuntime samples this process's goroutines and heap every 5 ms until
// the returned function is called, which returns the peaks.
func sampleRuntime() func() (goroutines int, heap uint64) {
	stop := make(chan struct{})
	done := make(chan struct{})
	var g int
	var h uint64
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			g = max(g, runtime.NumGoroutine())
			runtime.ReadMemStats(&ms)
			h = max(h, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int, uint64) {
		close(stop)
		<-done
		return g, h
	}
}
