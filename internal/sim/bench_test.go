package sim_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"rocksaying.tw/gated/internal/gate"
	"rocksaying.tw/gated/internal/sim"
)

// BenchmarkTravel is the model's cost of one end-to-end travel and back,
// in fake time: two relay changes, four switch crossings, read as gated reads
// them.
func BenchmarkTravel(b *testing.B) {
	clk := clockwork.NewFakeClockAt(epoch)
	s := sim.New(sim.Config{TravelTime: travel}, clk)
	pins := s.Pins()
	for _, p := range []gpio.PinIn{pins.OpenLimit, pins.ClosedLimit} {
		if err := p.In(gpio.PullDown, gpio.BothEdges); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range []gpio.PinOut{pins.MotorOpen, pins.MotorClose} {
			if err := p.Out(gpio.High); err != nil {
				b.Fatal(err)
			}
			clk.Advance(travel)
			pins.OpenLimit.Read()
			pins.ClosedLimit.Read()
			if err := p.Out(gpio.Low); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDo is the round trip of a command through gate.Gate's owner to
// the relays: Do(open) and Do(stop) alternately, on a simulated gate.
func BenchmarkDo(b *testing.B) {
	clk := clockwork.NewFakeClockAt(epoch)
	gcfg := gateConfig(gate.Hold)
	s := sim.New(simConfig(gcfg, 0.5), clk)
	g, err := gate.New(gcfg, s.Pins(), gate.Options{Clock: clk, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), EdgeWait: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		clk.Advance(time.Hour) // release the input watchers
	}()
	cmds := [2]gate.Command{gate.CmdOpen, gate.CmdStop}
	for { // Run takes commands a moment after it starts
		if _, err := g.Do(ctx, gate.CmdStop, gate.CauseMQTT); err == nil {
			break
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := g.Do(ctx, cmds[i%2], gate.CauseMQTT); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if sn := s.Snapshot(); sn.Shorts != 0 {
		b.Errorf("shorts: got %d, want 0", sn.Shorts)
	}
}
