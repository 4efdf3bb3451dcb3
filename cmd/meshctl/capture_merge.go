package main

import (
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// mergeWindow is how long a packet waits for the packets of other hops
// stamped before it. Every node streams its packets as its sockets read
// them, so two hops' packets arrive out of their kernel order by the
// time a stream takes to cross: well under a millisecond between the
// lab's nodes, which share a machine and a clock. A fifth of a second
// covers a loaded machine and is still live enough for Wireshark.
const mergeWindow = 200 * time.Millisecond

// heldPacket is a packet waiting in a [merger], with the index of its
// hop among all the hops of the capture.
type heldPacket struct {
	hop     int
	pkt     api.CapturedPacket
	arrived time.Time
}

// merger puts the packets of several streams in the order of their
// kernel times. A packet is let out once it has waited the window, with
// every packet stamped before it: so the output is in time order unless
// a packet arrives more than the window after a later one.
type merger struct {
	window time.Duration
	held   []heldPacket // sorted by pkt.Time, arrival order among equals
}

// push holds a packet that arrived at now.
func (m *merger) push(hop int, p api.CapturedPacket, now time.Time) {
	i, _ := slices.BinarySearchFunc(m.held, p.Time, func(h heldPacket, t time.Time) int {
		if h.pkt.Time.After(t) {
			return 1
		}
		return -1 // equal times: after those already held
	})
	m.held = slices.Insert(m.held, i, heldPacket{hop: hop, pkt: p, arrived: now})
}

// ready takes out, in time order, the packets to write at now.
func (m *merger) ready(now time.Time) []heldPacket {
	cut := -1
	for i, h := range m.held {
		if now.Sub(h.arrived) >= m.window {
			cut = i // this one has waited enough, and so may all before it
		}
	}
	out := slices.Clone(m.held[:cut+1])
	m.held = slices.Delete(m.held, 0, cut+1)
	return out
}

// drain takes out every packet held, in time order.
func (m *merger) drain() []heldPacket {
	out := m.held
	m.held = nil
	return out
}

// next is when ready will next have something, or zero if nothing is held.
func (m *merger) next() time.Time {
	var first time.Time
	for _, h := range m.held {
		if first.IsZero() || h.arrived.Before(first) {
			first = h.arrived
		}
	}
	if first.IsZero() {
		return first
	}
	return first.Add(m.window)
}
