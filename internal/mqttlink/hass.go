package mqttlink

// Home Assistant (SPEC.md "Home Assistant"): the device discovery document
// of hadevice.go on every connection and whenever Home Assistant says it
// is online, and the migration of the per-entity documents earlier
// versions retained. paho's handlers only queue work; the publisher
// publishes.

import (
	"fmt"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func (l *Link) haDevice() haDevice {
	kind := l.cfg.Kind
	if kind == "" {
		kind = "gate"
	}
	return haDevice{
		NodeID: l.nodeID(), Name: l.cfg.GateName, Kind: kind, Version: l.opt.Version,
		TopicPrefix: l.cfg.TopicPrefix, DiscoveryPrefix: l.cfg.DiscoveryPrefix,
	}
}

func (l *Link) addHARoutes() {
	l.client.AddRoute(haStatusTopic(l.cfg.DiscoveryPrefix), l.onHAStatus)
	for _, t := range l.haDevice().legacyTopics() {
		l.client.AddRoute(t, l.onLegacy)
	}
}

// haSubscriptions adds Home Assistant's status topic and the legacy
// per-entity topics, whose retained documents the broker then replays.
func (l *Link) haSubscriptions(subs map[string]byte) {
	subs[haStatusTopic(l.cfg.DiscoveryPrefix)] = 1
	for _, t := range l.haDevice().legacyTopics() {
		subs[t] = 1
	}
}

// onHAStatus: Home Assistant's birth message means it has (re)started and
// forgotten what was not retained, or lost the retained documents (a
// broker without persistence): discovery and state again.
func (l *Link) onHAStatus(_ mqtt.Client, m mqtt.Message) {
	if string(m.Payload()) != haOnline {
		return
	}
	select {
	case l.haOnline <- struct{}{}:
	default: // one republication pending is enough
	}
}

// onLegacy: a per-entity document an earlier version retained, replayed by
// the broker. Our own migration messages come back too: only a retained
// document that is neither those nor empty is migrated.
func (l *Link) onLegacy(_ mqtt.Client, m mqtt.Message) {
	if !m.Retained() || len(m.Payload()) == 0 || string(m.Payload()) == haMigratePayload {
		return
	}
	select {
	case l.legacy <- m.Topic():
	default:
		l.log.Warn("home assistant: legacy discovery topic not migrated: queue full", "topic", m.Topic())
	}
}

// publishDiscovery publishes the device document, waiting for each
// PUBACK; the publisher's goroutine only.
func (l *Link) publishDiscovery() error {
	d := l.haDevice()
	doc, err := d.document()
	if err != nil {
		return err
	}
	if err := wait(l.client.Publish(d.topic(), 1, true, doc)); err != nil {
		return fmt.Errorf("discovery %s: %w", d.topic(), err)
	}
	return nil
}

// migrate moves Home Assistant's entity of a legacy per-entity topic to the
// device document, in the order Home Assistant's migration asks: the
// migrate_discovery payload on the old topic (HA unloads the entity and
// keeps its registry entry), the device document (HA takes the entity
// over), then an empty retained message clearing the old topic.
func (l *Link) migrate(topic string) error {
	if err := wait(l.client.Publish(topic, 1, true, haMigratePayload)); err != nil {
		return fmt.Errorf("migrate %s: %w", topic, err)
	}
	if err := l.publishDiscovery(); err != nil {
		return err
	}
	if err := wait(l.client.Publish(topic, 1, true, []byte{})); err != nil {
		return fmt.Errorf("clear %s: %w", topic, err)
	}
	l.log.Info("home assistant: per-entity discovery document migrated to the device document", "topic", topic)
	return nil
}
