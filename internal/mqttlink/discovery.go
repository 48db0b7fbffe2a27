package mqttlink

import "strings"

// nodeID is the client id as Home Assistant accepts it in a discovery
// topic and a unique_id: stable for one gate, distinct between gates.
func (l *Link) nodeID() string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, l.cfg.ClientID)
}
