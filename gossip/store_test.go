package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ent builds an entry of table "t", key "k" in the cluster-wide scope;
// value "" makes a tombstone.
func ent(owner string, ltime uint64, value string) Entry {
	e := Entry{Table: "t", Key: "k", Owner: owner, LTime: ltime}
	if value == "" {
		e.Deleted = true
	} else {
		e.Value = []byte(value)
	}
	return e
}

// storeWith returns a store of node "me" holding the given records.
func storeWith(records ...Entry) *store {
	s := newStore("me")
	for _, e := range records {
		s.witness(e.LTime)
		s.replace(e, t0)
	}
	return s
}

// mergeTests are versions arriving at node "me".
var mergeTests = []struct {
	name       string
	local      []Entry // records before
	remote     Entry
	dead       bool // remote's owner is not alive here
	wantStored bool
	want       *Entry // record after; nil: none
	wantEvents []Event
	wantGossip []Entry
}{
	{name: "unknown entry is created", remote: ent("beta", 5, "v"),
		wantStored: true, want: ptr(ent("beta", 5, "v")), wantEvents: []Event{{Create, ent("beta", 5, "v")}}},
	{name: "newer version replaces", local: []Entry{ent("beta", 3, "v1")}, remote: ent("beta", 5, "v2"),
		wantStored: true, want: ptr(ent("beta", 5, "v2")), wantEvents: []Event{{Update, ent("beta", 5, "v2")}}},
	{name: "older version is ignored", local: []Entry{ent("beta", 5, "v2")}, remote: ent("beta", 3, "v1"),
		want: ptr(ent("beta", 5, "v2"))},
	{name: "tie goes to the higher owner", local: []Entry{ent("alpha", 5, "a")}, remote: ent("beta", 5, "b"),
		wantStored: true, want: ptr(ent("beta", 5, "b")), wantEvents: []Event{{Update, ent("beta", 5, "b")}}},
	{name: "tie against the higher owner is ignored", local: []Entry{ent("beta", 5, "b")}, remote: ent("alpha", 5, "a"),
		want: ptr(ent("beta", 5, "b"))},
	{name: "tombstone deletes, event keeps the value", local: []Entry{ent("beta", 3, "v")}, remote: ent("alpha", 4, ""),
		wantStored: true, want: ptr(ent("alpha", 4, "")),
		wantEvents: []Event{{Delete, Entry{Table: "t", Key: "k", Value: []byte("v"), Owner: "alpha", LTime: 4, Deleted: true}}}},
	{name: "tombstone of an unknown entry is kept silently", remote: ent("beta", 4, ""),
		wantStored: true, want: ptr(ent("beta", 4, ""))},
	{name: "live version over a tombstone is a create", local: []Entry{ent("beta", 3, "")}, remote: ent("beta", 4, "v"),
		wantStored: true, want: ptr(ent("beta", 4, "v")), wantEvents: []Event{{Create, ent("beta", 4, "v")}}},
	{name: "entry of a node not alive is refused", remote: ent("beta", 4, "v"), dead: true},
	{name: "authority: a newer copy of mine is overwritten by mine", local: []Entry{ent("me", 2, "new")},
		remote: ent("me", 7, "old"), want: ptr(ent("me", 8, "new")), wantGossip: []Entry{ent("me", 8, "new")}},
	{name: "authority: same time, other value", local: []Entry{ent("me", 7, "new")},
		remote: ent("me", 7, "old"), want: ptr(ent("me", 8, "new")), wantGossip: []Entry{ent("me", 8, "new")}},
	{name: "authority: a newer copy of my tombstone", local: []Entry{ent("me", 2, "")},
		remote: ent("me", 7, "old"), want: ptr(ent("me", 8, "")), wantGossip: []Entry{ent("me", 8, "")}},
	{name: "authority: a copy of mine I lost is deleted", remote: ent("me", 7, "old"),
		want: ptr(ent("me", 8, "")), wantGossip: []Entry{ent("me", 8, "")}},
	{name: "authority: an older copy of mine is ignored", local: []Entry{ent("me", 9, "new")},
		remote: ent("me", 7, "old"), want: ptr(ent("me", 9, "new"))},
	{name: "authority: an identical copy is ignored", local: []Entry{ent("me", 7, "v")},
		remote: ent("me", 7, "v"), want: ptr(ent("me", 7, "v"))},
	{name: "authority: my lost tombstone is ignored", remote: ent("me", 7, "")},
	{name: "authority: a newer write by another node wins", local: []Entry{ent("beta", 9, "b")},
		remote: ent("me", 7, "old"), want: ptr(ent("beta", 9, "b"))},
	{name: "authority: my old tombstone over an older write applies", local: []Entry{ent("beta", 5, "b")},
		remote: ent("me", 7, ""), wantStored: true, want: ptr(ent("me", 7, "")),
		wantEvents: []Event{{Delete, Entry{Table: "t", Key: "k", Value: []byte("b"), Owner: "me", LTime: 7, Deleted: true}}}},
	{name: "authority: my old copy over another's older write is deleted", local: []Entry{ent("beta", 5, "b")},
		remote: ent("me", 7, "old"), want: ptr(ent("me", 8, "")), wantGossip: []Entry{ent("me", 8, "")},
		wantEvents: []Event{{Delete, Entry{Table: "t", Key: "k", Value: []byte("b"), Owner: "me", LTime: 8, Deleted: true}}}},
}

func TestMerge(t *testing.T) {
	for _, tc := range mergeTests {
		t.Run(tc.name, func(t *testing.T) {
			s := storeWith(tc.local...)
			o, stored := s.merge(tc.remote, !tc.dead, t0)
			if stored != tc.wantStored {
				t.Errorf("stored = %v, want %v", stored, tc.wantStored)
			}
			var got *Entry
			if r, ok := s.records[entryKey{"t", "", "k"}]; ok {
				got = &r.Entry
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEvents, o.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantGossip, o.gossip); diff != "" {
				t.Errorf("gossip (-want +got):\n%s", diff)
			}
			if s.clock < tc.remote.LTime {
				t.Errorf("clock = %d, want ≥ %d (witnessed)", s.clock, tc.remote.LTime)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Whatever order the versions of an entry arrive in, every node ends with
// the newest one.
func TestMergeAnyOrderConvergesToNewest(t *testing.T) {
	versions := []Entry{ent("alpha", 3, "a3"), ent("beta", 3, "b3"), ent("alpha", 5, ""), ent("gamma", 4, "g4"),
		ent("beta", 6, "b6")}
	want := ent("beta", 6, "b6")
	for _, order := range permutations(len(versions)) {
		s := newStore("me")
		for _, i := range order {
			s.merge(versions[i], true, t0)
		}
		if diff := cmp.Diff(want, s.records[entryKey{"t", "", "k"}].Entry); diff != "" {
			t.Errorf("order %v (-want +got):\n%s", order, diff)
		}
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestWriteTicksPastWhatWasSeen(t *testing.T) {
	s := newStore("me")
	s.merge(ent("beta", 41, "b"), true, t0)
	o := s.write(entryKey{"t", "", "k"}, []byte("mine"), false, t0)
	want := []Entry{{Table: "t", Key: "k", Value: []byte("mine"), Owner: "me", LTime: 42}}
	if diff := cmp.Diff(want, o.gossip); diff != "" {
		t.Errorf("gossip (-want +got):\n%s", diff)
	}
}

func TestDropOwner(t *testing.T) {
	s := newStore("me")
	for i, owner := range []string{"beta", "alpha", "beta", "beta"} {
		e := Entry{Table: "t", Key: fmt.Sprintf("k%d", i), Value: []byte("v"), Owner: owner, LTime: uint64(i + 1)}
		e.Deleted = i == 3
		s.merge(e, true, t0)
	}
	o := s.dropOwner("beta")
	gone := func(key string, lt uint64) Event {
		return Event{Delete, Entry{Table: "t", Key: key, Value: []byte("v"), Owner: "beta", LTime: lt, Deleted: true}}
	}
	if diff := cmp.Diff([]Event{gone("k0", 1), gone("k2", 3)}, o.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	var left []string
	for _, e := range s.entries(func(Entry) bool { return true }) {
		left = append(left, e.Key)
	}
	if diff := cmp.Diff([]string{"k1"}, left); diff != "" {
		t.Errorf("records left (-want +got):\n%s", diff)
	}
}

func TestReap(t *testing.T) {
	s := newStore("me")
	s.merge(ent("beta", 1, ""), true, t0)
	s.write(entryKey{"t", "", "live"}, []byte("v"), false, t0)
	s.write(entryKey{"t", "", "later"}, nil, true, t0.Add(time.Minute))
	tests := []struct {
		now  time.Time
		want []string
	}{
		{t0.Add(59 * time.Second), []string{"k", "later", "live"}},
		{t0.Add(time.Minute), []string{"later", "live"}},
		{t0.Add(2 * time.Minute), []string{"live"}},
	}
	for _, tc := range tests {
		s.reap(tc.now, time.Minute)
		var got []string
		for _, e := range s.entries(func(Entry) bool { return true }) {
			got = append(got, e.Key)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("after reap at %v (-want +got):\n%s", tc.now.Sub(t0), diff)
		}
	}
}

// A node may delete an entry another node owns (a new leader removing a
// former leader's leftovers): its tombstone is stamped past the owner's
// version, so it wins on every node, the owner's included, and the
// owner's old version coming back later changes nothing.
func TestDeleteOfAnotherNodesEntryWins(t *testing.T) {
	k := entryKey{"t", "", "k"}
	owner, deleter, other := newStore("beta"), newStore("me"), newStore("gamma")
	orig := owner.write(k, []byte("v"), false, t0).gossip[0]
	for _, s := range []*store{deleter, other} {
		s.merge(orig, true, t0)
	}
	tomb := deleter.write(k, nil, true, t0).gossip[0]
	if tomb.Owner != "me" || !newer(tomb, orig) {
		t.Fatalf("tombstone %v does not win over %v", tomb, orig)
	}
	for _, s := range []*store{owner, other} {
		if _, stored := s.merge(tomb, true, t0); !stored {
			t.Errorf("%s refused the tombstone", s.self)
		}
	}
	for _, s := range []*store{owner, deleter, other} {
		s.merge(orig, true, t0) // the owner's version again, by push/pull
		if e, ok := s.live(k); ok {
			t.Errorf("%s holds %v after the delete", s.self, e)
		}
	}
}

// TestVersionMovesWithEveryChange: the push/pull state is encoded again
// only when the store's version moves, so every operation that changes
// the records must move it. Each step runs on the store the steps before
// it left.
func TestVersionMovesWithEveryChange(t *testing.T) {
	s := newStore("me")
	all := func(Entry) bool { return true }
	steps := []struct {
		name    string
		changes bool // whether the step changes the records
		do      func()
	}{
		{"local put", true, func() { s.write(entryKey{"t", "net1", "a"}, []byte("1"), false, t0) }},
		{"local update", true, func() { s.write(entryKey{"t", "net1", "a"}, []byte("2"), false, t0) }},
		{"remote entry", true, func() { s.merge(Entry{Table: "t", Key: "b", Value: []byte("x"), Owner: "beta", LTime: 20}, true, t0) }},
		{"older remote version", false, func() { s.merge(Entry{Table: "t", Key: "b", Value: []byte("old"), Owner: "beta", LTime: 3}, true, t0) }},
		{"entry of a dead owner", false, func() { s.merge(Entry{Table: "t", Key: "c", Value: []byte("x"), Owner: "gamma", LTime: 30}, false, t0) }},
		{"network's newer copy of ours, re-stamped", true, func() {
			s.merge(Entry{Table: "t", Scope: "net1", Key: "a", Value: []byte("theirs"), Owner: "me", LTime: 40}, true, t0)
		}},
		{"our own version echoed", false, func() {
			cur, _ := s.live(entryKey{"t", "net1", "a"})
			s.merge(cur, true, t0)
		}},
		{"unknown entry of ours, tombstoned", true, func() {
			s.merge(Entry{Table: "t", Key: "z", Value: []byte("x"), Owner: "me", LTime: 50}, true, t0)
		}},
		{"scope deleted", true, func() { s.deleteScope("net1", t0.Add(time.Minute)) }},
		{"owner dropped", true, func() { s.dropOwner("beta") }},
		{"nothing to reap yet", false, func() { s.reap(t0.Add(30*time.Second), time.Minute) }},
		{"tombstones reaped", true, func() { s.reap(t0.Add(5*time.Minute), time.Minute) }},
	}
	for _, step := range steps {
		before, v := s.entries(all), s.version
		step.do()
		changed := !cmp.Equal(before, s.entries(all))
		if changed != step.changes {
			t.Fatalf("%s: records changed %v, want %v", step.name, changed, step.changes)
		}
		if moved := s.version != v; moved != changed {
			t.Errorf("%s: records changed %v, version moved %v", step.name, changed, moved)
		}
	}
}

// List's order is part of its contract: records hashes the desired
// state's tables in the order List gives, against a digest taken over
// keys sorted by the leader.
func TestListIsSortedByKey(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	for _, k := range []string{"m", "b", "z", "a", "k"} {
		for _, scope := range []string{"s2", "s1"} {
			if err := db.Put("t", scope, k, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Put("other", "s1", "c", []byte("v")); err != nil {
		t.Fatal(err)
	}
	keys := func(es []Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.Scope+"/"+e.Key)
		}
		return out
	}
	if diff := cmp.Diff([]string{"s1/a", "s1/b", "s1/k", "s1/m", "s1/z"}, keys(db.List("t", "s1"))); diff != "" {
		t.Errorf("List(t, s1) (-want +got):\n%s", diff)
	}
	want := []string{"s1/a", "s1/b", "s1/k", "s1/m", "s1/z", "s2/a", "s2/b", "s2/k", "s2/m", "s2/z"}
	if diff := cmp.Diff(want, keys(db.List("t", AllScopes))); diff != "" {
		t.Errorf("List(t, AllScopes) (-want +got):\n%s", diff)
	}
}
