package records

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/meshd/meshd/gossip"
)

// FakeDB is an in-memory [DB] for tests of the manager and the agent: one
// node's view of the tables, with entries it owns and entries other nodes
// "gossiped" to it ([FakeDB.PutAs]), and a member list set by the test.
// Unlike gossip it has no clocks or tombstones: the last write wins and a
// delete removes. It lives in a non-test file so other packages use it.
type FakeDB struct {
	self string

	mu       sync.Mutex // guards the fields below
	entries  map[[3]string]gossip.Entry
	members  []gossip.Member
	watchers map[string][]chan gossip.Event
	synced   []string          // the members SyncWith was called with, in order
	gens     map[string]uint64 // by table: its changes
}

var _ DB = (*FakeDB)(nil)

// NewFakeDB returns an empty store for the node named self.
func NewFakeDB(self string) *FakeDB {
	return &FakeDB{self: self, entries: map[[3]string]gossip.Entry{}, watchers: map[string][]chan gossip.Event{},
		gens: map[string]uint64{}}
}

// LocalName returns the node name the store was made for.
func (f *FakeDB) LocalName() string { return f.self }

// Put writes an entry owned by this node.
func (f *FakeDB) Put(table, scope, key string, value []byte) error {
	return f.PutAs(f.self, table, scope, key, value)
}

// PutAs writes an entry owned by another node, as if gossip brought it.
func (f *FakeDB) PutAs(owner, table, scope, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := gossip.Entry{Table: table, Scope: scope, Key: key, Value: slices.Clone(value), Owner: owner}
	f.entries[[3]string{table, scope, key}] = e
	f.notifyLocked(gossip.Event{Type: gossip.Update, Entry: e})
	return nil
}

// Delete removes an entry; absent is fine.
func (f *FakeDB) Delete(table, scope, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [3]string{table, scope, key}
	if e, ok := f.entries[k]; ok {
		delete(f.entries, k)
		e.Deleted = true
		f.notifyLocked(gossip.Event{Type: gossip.Delete, Entry: e})
	}
	return nil
}

// Get returns an entry.
func (f *FakeDB) Get(table, scope, key string) (gossip.Entry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[[3]string{table, scope, key}]
	e.Value = slices.Clone(e.Value)
	return e, ok
}

// List returns a table's entries in scope (or every scope with
// AllNetworks), sorted by scope then key, as gossip does.
func (f *FakeDB) List(table, scope string) []gossip.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []gossip.Entry
	for _, e := range f.entries {
		if e.Table == table && (scope == AllNetworks || e.Scope == scope) {
			e.Value = slices.Clone(e.Value)
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b gossip.Entry) int {
		if c := strings.Compare(a.Scope, b.Scope); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// SetMembers replaces the member list Members returns.
func (f *FakeDB) SetMembers(ms ...gossip.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = slices.Clone(ms)
}

// Members returns the members set by SetMembers.
func (f *FakeDB) Members() []gossip.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

// Watch returns a channel of the table's changes until ctx ends. Events
// that find the channel full are dropped: a watcher only needs a wake-up.
func (f *FakeDB) Watch(ctx context.Context, table string) <-chan gossip.Event {
	ch := make(chan gossip.Event, 64)
	f.mu.Lock()
	f.watchers[table] = append(f.watchers[table], ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.watchers[table] = slices.DeleteFunc(f.watchers[table], func(c chan gossip.Event) bool { return c == ch })
		close(ch)
	}()
	return ch
}

func (f *FakeDB) notifyLocked(ev gossip.Event) {
	f.gens[ev.Entry.Table]++
	for _, ch := range f.watchers[ev.Entry.Table] {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Generation counts the table's writes and deletes.
func (f *FakeDB) Generation(table string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gens[table]
}

// SyncWith records the call: a FakeDB holds what the test put, so there
// is nothing to exchange.
func (f *FakeDB) SyncWith(member string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = append(f.synced, member)
	return nil
}

// Synced returns the members SyncWith was called with, in order.
func (f *FakeDB) Synced() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.synced)
}
