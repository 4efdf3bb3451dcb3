package mesh

import (
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// memberEvent turns a gossip member's change into a node event: "join"
// (first seen, or back after it died or left), "suspect" (this node's
// probe of it went unanswered), "alive" (a suspect member answered
// again), "down" (dead: no answer within the suspicion timeout) or
// "leave". The member's name in gossip is the node ID;
// its hostname comes from its metadata.
func (d *Daemon) memberEvent(ch gossip.MemberChange) {
	var action string
	switch ch.State {
	case gossip.StateAlive:
		action = "join"
		if !ch.New && ch.Old == gossip.StateSuspect {
			action = "alive"
		}
	case gossip.StateSuspect:
		action = "suspect"
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

// leaderEvent records, on a manager, that raft elected a new leader:
// "node leader ID (name=…)". A moment without a leader is not an event:
// the next leader's is.
func (d *Daemon) leaderEvent(id string, store *manager.Store) {
	if id == "" {
		return
	}
	attrs := map[string]string{}
	if id == d.id.ID {
		attrs["name"] = d.cfg.NodeName // before its node record exists, at bootstrap
	} else if store != nil {
		if n, ok := store.Read().Nodes[id]; ok {
			attrs["name"] = n.Hostname
		}
	}
	d.events.Add(events.Event{Type: events.TypeNode, Action: "leader", ID: id, Attributes: attrs})
}
