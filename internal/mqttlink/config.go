package mqttlink

// The link's configuration.

import (
	"crypto/tls"
	"time"
)

// Config is what the link is told, every field set. internal/config checks
// the [mqtt] section, parses the broker URL, fills in the default client id
// and reads the password and the TLS certificates; cmd/gated copies the
// result here. New checks none of it again.
type Config struct {
	Broker      string      // tcp://host:port or ssl://host:port: config.MQTT.URL
	TLS         *tls.Config // for an ssl:// broker: its CA and our certificate; nil: the system's CAs
	ClientID    string
	TopicPrefix string
	Username    string
	Password    string // never logged

	KeepAlive     time.Duration
	MaxCommandAge time.Duration

	Discovery       bool
	DiscoveryPrefix string
	GateName        string // the Home Assistant device name
	Kind            string // [gate] kind, "gate" or "garage": the cover's device_class
}
