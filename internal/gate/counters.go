package gate

// Counters are the status document's counters, kept across restarts by
// cmd/gated (internal/state): Config.Restored starts them where the last
// run left them.
//
//   - Openings: each motion towards open that gated starts, by a command or
//     by an obstruction reversal (a gate pushed open by hand is not one).
//   - Obstructions: each obstruction reversal: the sensor went active while
//     the gate was closing, and the gate re-opened. (The self-test's own
//     cuts of the beam, and obstructions while the gate stands still, are
//     not counted.)
//   - Faults: each entry into state fault.
type Counters struct {
	Openings, Obstructions, Faults uint64
}

// Restored is what the gate takes over from its last run.
type Restored struct {
	Counters
	// Suspended: automatic closing was suspended by two strikes, and no
	// person has commanded the gate since.
	Suspended bool
}

// restore starts the machine from what the last run left.
func (m Machine) restore(r Restored) Machine {
	m.count = r.Counters
	m.suspended = r.Suspended
	if r.Suspended {
		m.strikes = strikesToSuspend
	}
	return m
}
