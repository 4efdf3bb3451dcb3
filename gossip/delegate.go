package gossip

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the DB as memberlist's Delegate. memberlist calls it
// concurrently from its packet, stream and gossip goroutines, sometimes with
// its node lock held, so it takes only db.mu and never calls back into
// memberlist. The lock order is memberlist's node lock → db.mu → queue lock.
type delegate struct{ db *DB }

var _ memberlist.Delegate = delegate{}

// NodeMeta returns this node's metadata (checked ≤ 512 bytes by New and
// UpdateMeta).
func (d delegate) NodeMeta(limit int) []byte {
	d.db.mu.Lock()
	defer d.db.mu.Unlock()
	return clone(d.db.meta)
}

// NotifyMsg handles a gossiped or directly sent message. memberlist may reuse
// b afterwards; decoding copies what it keeps.
func (d delegate) NotifyMsg(b []byte) { d.db.handle(b) }

// GetBroadcasts hands memberlist queued updates to piggyback on its packets.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.db.queue.GetBroadcasts(overhead, limit)
}

// LocalState is this node's half of a push/pull: every entry it holds,
// tombstones included. While the store has not changed, it hands out the
// same encoding again (memberlist only copies it).
func (d delegate) LocalState(join bool) []byte {
	db := d.db
	db.mu.Lock()
	if db.state != nil && db.stateOf == db.st.version {
		defer db.mu.Unlock()
		return db.state
	}
	all, version := db.st.entries(func(Entry) bool { return true }), db.st.version
	db.mu.Unlock()
	// Encoded without the lock, which the DB's writers and readers wait on.
	b, err := encodeMessage(message{Type: msgState, From: db.cfg.Name, Entries: all})
	if err != nil {
		db.log.Error("encode local state", "err", err)
		return nil
	}
	db.mu.Lock()
	db.state, db.stateOf = b, version
	db.mu.Unlock()
	return b
}

// MergeRemoteState merges the other node's half of a push/pull.
func (d delegate) MergeRemoteState(b []byte, join bool) { d.db.handle(b) }

// events is the DB as memberlist's EventDelegate. memberlist calls it with
// its node lock held, one call at a time.
type events struct{ db *DB }

var _ memberlist.EventDelegate = events{}

func (e events) NotifyJoin(n *memberlist.Node)   { e.db.memberUp(n, true) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.db.memberUp(n, false) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.db.memberDown(n) }

// pings is the DB as memberlist's PingDelegate: an answered probe ends
// this node's suspicion of the member.
type pings struct{ db *DB }

var _ memberlist.PingDelegate = pings{}

func (pings) AckPayload() []byte { return nil }
func (p pings) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	p.db.memberAnswered(n.Name)
}

// broadcast is one update in memberlist's transmit queue. A newer update of
// the same entry replaces it.
type broadcast struct {
	name string // entryKey.name()
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.name == b.name
}

// handle decodes and applies a message from another node. Garbage is logged
// and dropped.
func (db *DB) handle(b []byte) {
	m, err := decodeMessage(b)
	if err != nil {
		db.limit.Log(context.Background(), db.log, slog.LevelWarn, "dropped message", "dropped message", "err", err)
		return
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return
	}
	if m.Type == msgLeaving {
		db.markLeavingLocked(m.From)
		return
	}
	now := time.Now()
	var o outcome
	for _, e := range m.Entries {
		p, stored := db.st.merge(e, db.aliveLocked(e.Owner), now)
		o.add(p)
		if stored && m.Type == msgUpdate {
			db.relayLocked(e)
		}
	}
	db.applyLocked(o)
	if m.Type == msgAnnounce {
		db.announceLocked(m.From, msgReply)
	}
}

// applyLocked hands a store outcome to the watchers and the cluster.
func (db *DB) applyLocked(o outcome) {
	for _, ev := range o.events {
		db.gens[ev.Entry.Table]++
		for w := range db.watchers {
			if w.table == "" || w.table == ev.Entry.Table {
				w.push(Event{Type: ev.Type, Entry: ev.Entry.clone()})
			}
		}
	}
	for _, e := range o.gossip {
		db.broadcastLocked(e)
	}
}

// broadcastLocked spreads a version this node wrote: by gossip, or when too
// big for a packet, over TCP to every alive member.
func (db *DB) broadcastLocked(e Entry) {
	if db.left {
		return
	}
	m := message{Type: msgUpdate, From: db.cfg.Name, Entries: []Entry{e}}
	b, err := encodeMessage(m)
	if err != nil {
		db.log.Error("encode update", "entry", e, "err", err)
		return
	}
	if len(b) <= maxGossipSize {
		db.queue.QueueBroadcast(&broadcast{name: keyOf(e).name(), msg: b})
		return
	}
	for _, r := range db.members {
		if r.Name != db.cfg.Name && r.State.up() {
			db.sendLocked(r.Member, m)
		}
	}
}

// relayLocked passes on a version received by gossip, as epidemic
// dissemination needs. Updates too big for gossip came over TCP from their
// writer, which sent them to everyone.
func (db *DB) relayLocked(e Entry) {
	if db.left {
		return
	}
	b, err := encodeMessage(message{Type: msgUpdate, From: db.cfg.Name, Entries: []Entry{e}})
	if err != nil || len(b) > maxGossipSize {
		return
	}
	db.queue.QueueBroadcast(&broadcast{name: keyOf(e).name(), msg: b})
}

// announceLocked sends this node's own entries, tombstones included, to the
// alive member named to.
func (db *DB) announceLocked(to string, typ msgType) {
	r, ok := db.members[to]
	if db.left || !ok || to == db.cfg.Name || !r.State.up() {
		return
	}
	own := db.st.entries(func(e Entry) bool { return e.Owner == db.cfg.Name })
	db.sendLocked(r.Member, message{Type: typ, From: db.cfg.Name, Entries: own})
}

// sendLocked sends m to one member over TCP in a goroutine, and returns a
// channel closed when that is done. db.mu must be held.
func (db *DB) sendLocked(to Member, m message) <-chan struct{} {
	done := make(chan struct{})
	if !db.goLocked(func(ctx context.Context) {
		defer close(done)
		db.send(ctx, to, m)
	}) {
		close(done)
	}
	return done
}

func (db *DB) send(ctx context.Context, to Member, m message) {
	select {
	case <-db.ready:
	case <-ctx.Done():
		return
	}
	if ctx.Err() != nil {
		return
	}
	b, err := encodeMessage(m)
	if err != nil {
		db.log.Error("encode message", "type", m.Type, "err", err)
		return
	}
	node := &memberlist.Node{Name: to.Name, Addr: net.ParseIP(to.Addr), Port: uint16(to.Port)}
	if err := db.ml.SendReliable(node, b); err != nil {
		db.log.Warn("send failed", "type", m.Type, "to", to.Name, "err", err)
	}
}
