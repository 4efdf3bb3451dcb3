package mesh

import (
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/records"
)

// memberEvent turns a gossip member's change into a node event: "join"
// (first seen, or back after it died or left), "down" (it failed its
// probes: dead) or "leave". The member's name in gossip is the node ID;
// its hostname comes from its metadata.
func (d *Daemon) memberEvent(ch gossip.MemberChange) {
	var action string
	switch ch.State {
	case gossip.StateAlive:
		action = "join"
	case gossip.StateDead:
		action = "down"
	case gossip.StateLeft:
		action = "leave"
	default:
		return
	}
	attrs := map[string]string{"state.new": ch.State.String(), "addr": ch.Addr}
	if !ch.New {
		attrs["state.old"] = ch.Old.String()
	}
	if meta, ok := records.DecodeMeta(ch.Meta); ok {
		attrs["name"] = meta.Name
	}
	d.events.Add(events.Event{Type: events.TypeNode, Action: action, ID: ch.Name, Attributes: attrs})
}
