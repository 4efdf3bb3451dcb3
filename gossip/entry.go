package gossip

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// AllScopes is the scope argument to [DB.List] that lists a table across
// every scope. It is not a valid scope for writes.
const AllScopes = "*"

// MaxValueSize is the largest value [DB.Put] accepts, in bytes. Every entry
// travels in every push/pull exchange, so it keeps a full state of a few
// hundred entries far below memberlist's 20 MB push/pull limit.
const MaxValueSize = 64 << 10

// maxNameSize bounds table, scope, key and owner names, in bytes.
const maxNameSize = 512

// maxLTime bounds the Lamport times this package accepts. A peer announcing a
// time near 2^64 would otherwise drive every clock into overflow.
const maxLTime = 1 << 62

// Entry is one replicated value: (Table, Scope, Key) → Value, written by
// Owner at Lamport time LTime.
//
// Entries returned by [DB.Get], [DB.List] and [DB.Watch] own their Value:
// it is a copy the caller may keep or modify.
type Entry struct {
	Table string
	Scope string // "" for cluster-wide entries, else a network ID
	Key   string
	Value []byte
	Owner string // name of the node that wrote it
	LTime uint64 // Lamport time of the write
	// Deleted marks a tombstone. Get and List never return tombstones;
	// a Delete event carries one (see [Event]).
	Deleted bool
}

// newer reports whether a wins over b: the higher Lamport time, a tie broken
// by the higher owner name.
//
// This order MUST NOT change: every node must pick the same winner.
func newer(a, b Entry) bool {
	if a.LTime != b.LTime {
		return a.LTime > b.LTime
	}
	return a.Owner > b.Owner
}

// same reports whether a and b are the same version of an entry.
func same(a, b Entry) bool {
	return a.LTime == b.LTime && a.Owner == b.Owner && a.Deleted == b.Deleted &&
		(a.Deleted || bytes.Equal(a.Value, b.Value))
}

func (e Entry) clone() Entry {
	if e.Value != nil {
		e.Value = bytes.Clone(e.Value)
	}
	return e
}

func (e Entry) String() string {
	state := "live"
	if e.Deleted {
		state = "deleted"
	}
	return fmt.Sprintf("%s/%s/%s@%d by %s (%s)", e.Table, e.Scope, e.Key, e.LTime, e.Owner, state)
}

// entryKey identifies an entry.
type entryKey struct{ table, scope, key string }

func keyOf(e Entry) entryKey { return entryKey{e.Table, e.Scope, e.Key} }

// name is an unambiguous string form of k, used to name broadcasts.
func (k entryKey) name() string {
	return fmt.Sprintf("%d:%s%d:%s%s", len(k.table), k.table, len(k.scope), k.scope, k.key)
}

// validName checks a table, scope or key argument.
func validName(what, s string, empty bool) error {
	switch {
	case s == "" && !empty:
		return fmt.Errorf("gossip: empty %s", what)
	case len(s) > maxNameSize:
		return fmt.Errorf("gossip: %s is %d bytes, limit %d", what, len(s), maxNameSize)
	case !utf8.ValidString(s):
		return fmt.Errorf("gossip: %s %q is not UTF-8", what, s) // JSON would mangle it
	}
	return nil
}

// validKey checks the table, scope and key of a write.
func validKey(table, scope, key string) error {
	if err := validName("table", table, false); err != nil {
		return err
	}
	if err := validScope(scope); err != nil {
		return err
	}
	return validName("key", key, false)
}

func validScope(scope string) error {
	if scope == AllScopes {
		return fmt.Errorf("gossip: scope %q is reserved", AllScopes)
	}
	return validName("scope", scope, true)
}

func validValue(v []byte) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("gossip: value is %d bytes, limit %d", len(v), MaxValueSize)
	}
	return nil
}

// validate checks an entry that came from the network.
func (e Entry) validate() error {
	if err := validKey(e.Table, e.Scope, e.Key); err != nil {
		return err
	}
	if err := validName("owner", e.Owner, false); err != nil {
		return err
	}
	if e.LTime == 0 || e.LTime > maxLTime {
		return fmt.Errorf("gossip: ltime %d out of range 1-%d", e.LTime, uint64(maxLTime))
	}
	return validValue(e.Value)
}

// EventType says what happened to an entry.
type EventType int

const (
	// Create: a live entry appeared where there was none (or a tombstone).
	Create EventType = iota + 1
	// Update: a live entry was replaced by a newer live version.
	Update
	// Delete: a live entry went away, by a tombstone or because its owner
	// died or left.
	Delete
)

func (t EventType) String() string {
	switch t {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change to a table as seen by this node.
//
// For Delete, Entry has Deleted set, the Owner and LTime of the deletion,
// and the Value the entry had before it went away, so a watcher can undo
// what it did for it.
type Event struct {
	Type  EventType
	Entry Entry
}
