package gate

import "sync"

// CommandQueue is how many command records a subscriber may fall behind
// before the oldest is dropped.
const CommandQueue = 256

// SubscribeCommands returns a channel that receives the record of every
// command the gate answers from now on, accepted or refused (a Reply:
// command, cause, who, the status after it and the refusal), until cancel
// is called. Like Subscribe, the owner never waits for a subscriber: when
// one falls CommandQueue records behind, its oldest unread record is
// dropped. Commands refused before they reach the owner (a stopped gate, a
// busy timeout) have no record: their caller has the answer.
func (g *Gate) SubscribeCommands() (<-chan Reply, func()) {
	c := make(chan Reply, CommandQueue)
	g.mu.Lock()
	if g.cmds == nil {
		g.cmds = map[chan Reply]struct{}{}
	}
	g.cmds[c] = struct{}{}
	g.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			g.mu.Lock()
			delete(g.cmds, c)
			g.mu.Unlock()
		})
	}
}

// record hands a command's Reply to the command subscribers, dropping a
// slow one's oldest record rather than waiting.
func (g *Gate) record(r Reply) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.cmds {
		for {
			select {
			case c <- r:
			default:
				select {
				case <-c:
				default:
				}
				continue
			}
			break
		}
	}
}
