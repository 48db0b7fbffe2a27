package gate

import "context"

// Pending is a command that Submit has queued for the owner; Wait gets its
// answer.
type Pending struct {
	g     *Gate
	reply chan result
}

// Submit queues cmd for the owner without waiting, for a caller that must
// not block (paho's handlers) and wants its command carried out without a
// hand-off through a goroutine of its own. Commands submitted from one
// goroutine are carried out in the order submitted, among those of every
// other caller (Do included). ok is false, and nothing was queued, when the
// owner already has a full queue of commands waiting: the caller may wait
// its turn with Do. When the gate is not running, the Pending's answer is
// already there (ReasonStopped).
func (g *Gate) Submit(cmd Command, cause Cause) (p *Pending, ok bool) {
	p = &Pending{g: g, reply: make(chan result, 1)}
	if !g.running.Load() {
		p.reply <- result{st: g.Status(), err: &RefusedError{Reason: ReasonStopped, Msg: "the gate is not running"}}
		return p, true
	}
	select {
	case g.reqs <- request{cmd: cmd, cause: cause, reply: p.reply}:
		return p, true
	case <-g.stopped:
		p.reply <- result{st: g.Status(), err: &RefusedError{Reason: ReasonStopped, Msg: "the gate has stopped"}}
		return p, true
	default:
		return nil, false
	}
}

// Wait returns the answer to the submitted command, as Do does: the status
// right after it and its refusal if any, or a *RefusedError with
// ReasonBusy if ctx ends first (the command may still be carried out).
func (p *Pending) Wait(ctx context.Context) (Status, error) { return p.g.await(ctx, p.reply) }
