package gossip

import (
	"cmp"
	"slices"
	"time"
)

// store is the replicated state as one node sees it, with its Lamport clock.
// It does no I/O and no locking: [DB] holds its lock around every call, and
// the tests and the fuzzer drive it directly.
//
// Values are never modified in place: a new version replaces the record, so
// slices handed out by the store stay valid; [DB] copies them at its
// boundary.
type store struct {
	self    string
	clock   uint64 // the highest Lamport time written or seen here
	records map[entryKey]*record
	version uint64 // moves with every change to records
}

type record struct {
	Entry
	deletedAt time.Time // when this tombstone was made or received here; zero if live
}

// outcome is what a change to the store asks of its owner.
type outcome struct {
	events []Event // for watchers, in order
	gossip []Entry // versions to broadcast to the cluster
}

func (o *outcome) add(p outcome) {
	o.events = append(o.events, p.events...)
	o.gossip = append(o.gossip, p.gossip...)
}

func newStore(self string) *store {
	return &store{self: self, records: make(map[entryKey]*record)}
}

func (s *store) tick() uint64 {
	s.clock++
	return s.clock
}

// witness advances the clock to a time seen on the network.
func (s *store) witness(t uint64) {
	if t > s.clock {
		s.clock = t
	}
}

// live returns the live entry at k.
func (s *store) live(k entryKey) (Entry, bool) {
	r, ok := s.records[k]
	if !ok || r.Deleted {
		return Entry{}, false
	}
	return r.Entry, true
}

// write stores a local Put (or, with deleted, a Delete) and gossips it.
func (s *store) write(k entryKey, value []byte, deleted bool, now time.Time) outcome {
	e := Entry{Table: k.table, Scope: k.scope, Key: k.key, Value: value,
		Owner: s.self, LTime: s.tick(), Deleted: deleted}
	o := s.replace(e, now)
	o.gossip = append(o.gossip, e)
	return o
}

// replace stores e over whatever is at its key and reports the change.
func (s *store) replace(e Entry, now time.Time) outcome {
	r := &record{Entry: e}
	if e.Deleted {
		r.Value = nil
		r.deletedAt = now
	}
	old, had := s.records[keyOf(e)]
	s.records[keyOf(e)] = r
	s.version++
	wasLive := had && !old.Deleted
	switch {
	case e.Deleted && wasLive:
		gone := r.Entry
		gone.Value = old.Value
		return outcome{events: []Event{{Type: Delete, Entry: gone}}}
	case e.Deleted:
		return outcome{}
	case wasLive:
		return outcome{events: []Event{{Type: Update, Entry: e}}}
	}
	return outcome{events: []Event{{Type: Create, Entry: e}}}
}

// merge applies a version received from the network. ownerAlive says whether
// e's owner is alive in the local membership view: entries of nodes that are
// not are refused. It reports whether e was stored, so the caller can relay it.
func (s *store) merge(e Entry, ownerAlive bool, now time.Time) (outcome, bool) {
	s.witness(e.LTime)
	if e.Owner == s.self {
		return s.assert(e, now)
	}
	if !ownerAlive {
		return outcome{}, false
	}
	if old, ok := s.records[keyOf(e)]; ok && !newer(e, old.Entry) {
		return outcome{}, false
	}
	return s.replace(e, now), true
}

// assert applies the authority rule to e, a version the network holds of an
// entry this node owns. This node's copy is the truth: when the network's
// differs and is not older, this node re-stamps its own version past it (a
// tombstone if it has none, e.g. after a restart) and gossips that.
func (s *store) assert(e Entry, now time.Time) (outcome, bool) {
	k := keyOf(e)
	cur, ok := s.records[k]
	switch {
	case ok && cur.Owner == s.self:
		if same(e, cur.Entry) || newer(cur.Entry, e) {
			return outcome{}, false
		}
		mine := cur.Entry
		mine.LTime = s.tick()
		r := &record{Entry: mine}
		if mine.Deleted {
			r.deletedAt = now // a re-stamped tombstone lives a full TTL again
		}
		s.records[k] = r
		s.version++
		return outcome{gossip: []Entry{mine}}, false
	case ok && !newer(e, cur.Entry):
		return outcome{}, false // another node's newer write already wins
	case e.Deleted:
		// An old tombstone of ours: "deleted" is what we hold too. Store it
		// only if it supersedes an older copy here, like any other version.
		if !ok {
			return outcome{}, false
		}
		return s.replace(e, now), true
	}
	tomb := Entry{Table: k.table, Scope: k.scope, Key: k.key, Owner: s.self, LTime: s.tick(), Deleted: true}
	o := s.replace(tomb, now)
	o.gossip = append(o.gossip, tomb)
	return o, false
}

// deleteScope tombstones every live entry this node owns in scope.
func (s *store) deleteScope(scope string, now time.Time) outcome {
	var o outcome
	for _, e := range s.entries(func(e Entry) bool {
		return e.Owner == s.self && e.Scope == scope && !e.Deleted
	}) {
		o.add(s.write(keyOf(e), nil, true, now))
	}
	return o
}

// dropOwner forgets every entry owned by a node that died or left, without
// tombstones: when it comes back it announces what it still holds.
func (s *store) dropOwner(name string) outcome {
	var o outcome
	for _, e := range s.entries(func(e Entry) bool { return e.Owner == name }) {
		delete(s.records, keyOf(e))
		s.version++
		if !e.Deleted {
			e.Deleted = true
			o.events = append(o.events, Event{Type: Delete, Entry: e})
		}
	}
	return o
}

// reap removes tombstones older than ttl and returns how many.
func (s *store) reap(now time.Time, ttl time.Duration) int {
	n := 0
	for k, r := range s.records {
		if r.Deleted && !now.Before(r.deletedAt.Add(ttl)) {
			delete(s.records, k)
			s.version++
			n++
		}
	}
	return n
}

// entries returns the records (tombstones included) that keep accepts,
// sorted by table, scope and key.
func (s *store) entries(keep func(Entry) bool) []Entry {
	var out []Entry
	for _, r := range s.records {
		if keep(r.Entry) {
			out = append(out, r.Entry)
		}
	}
	slices.SortFunc(out, compareEntries)
	return out
}

func compareEntries(a, b Entry) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Key, b.Key))
}
