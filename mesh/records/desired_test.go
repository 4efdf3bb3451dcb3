package records

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
)

// ownedBy is db as another node writes into it: a leader elsewhere,
// whose entries gossip brought here.
type ownedBy struct {
	*FakeDB
	owner string
}

func (o ownedBy) LocalName() string { return o.owner }

func (o ownedBy) Put(table, scope, key string, value []byte) error {
	return o.PutAs(o.owner, table, scope, key, value)
}

// objects is a desired state with the given tasks of service www, all on
// node n1.
func objects(tasks ...string) Objects {
	o := Objects{
		Nodes:    map[string]api.Node{"n1": {ID: "n1", Hostname: "node1", Role: api.RoleWorker}},
		Networks: map[string]api.Network{"net1": {ID: "net1", Name: "ingress", Ingress: true, Subnet: "10.255.0.0/16"}},
		Services: map[string]api.Service{"s1": {ID: "s1", Name: "www"}},
		Tasks:    map[string]api.Task{},
	}
	for i, id := range tasks {
		o.Tasks[id] = api.Task{ID: id, ServiceID: "s1", ServiceName: "www", Slot: i + 1, NodeID: "n1",
			DesiredState: api.TaskRunning}
	}
	return o
}

// publish publishes o as leader into db, failing the test on error.
func publish(t *testing.T, p *Publisher, db DB, o Objects, version uint64) {
	t.Helper()
	if err := p.Publish(db, o, version, ""); err != nil {
		t.Fatal(err)
	}
}

func newDesired(t *testing.T, db DB, dir string) *Desired {
	t.Helper()
	d, err := NewDesired(db, filepath.Join(dir, "desired.json"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func head(t *testing.T, db DB) Head {
	t.Helper()
	e, ok := db.Get(TableCluster, "", HeadKey)
	if !ok {
		t.Fatal("no head in the tables")
	}
	h, err := decodeHead(e.Value)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHeadCertifiesThePublishedState(t *testing.T) {
	db := NewFakeDB("m1")
	o := objects("t1", "t2")
	publish(t, NewPublisher(), db, o, 7)
	h := head(t, db)
	tables, n := listDesired(db)
	digest := digestEntries(tables)
	if h.Leader != "m1" || h.Version != 7 || h.Entries != 5 || h.Digest != digest || n != 5 {
		t.Errorf("head %+v, tables' digest %s over %d entries; want m1 at 7 over 5 entries", h, digest, n)
	}
	b, err := encodeHead(h)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := decodeHead(b); err != nil || back != h {
		t.Errorf("head round trip: got %+v, %v; want %+v", back, err, h)
	}
	d := newDesired(t, db, t.TempDir())
	if diff := cmp.Diff(o, d.Current()); diff != "" {
		t.Errorf("adopted state (-want +got):\n%s", diff)
	}
	want := DesiredInfo{Fresh: true, Leader: "m1", Version: 7, Entries: 5, Digest: digest}
	if got := d.Info(); got != want || !d.Fresh() || got.Warning() != "" {
		t.Errorf("info: got %+v (warning %q), want %+v", got, got.Warning(), want)
	}
}

// The digest tells every difference apart, the boundaries between
// fields included.
func TestDigestIsUnambiguous(t *testing.T) {
	type ent struct{ table, key, value string }
	sets := [][]ent{
		{},
		{{"nodes", "a", "bc"}},
		{{"nodes", "ab", "c"}},
		{{"nodes", "a", "b"}, {"nodes", "c", ""}},
		{{"nodes", "a", "b\x00\x00\x00\x00\x00\x00\x00\x01c"}},
		{{"tasks", "a", "bc"}},
		{{"nodes", "a", "bc"}, {"tasks", "a", "bc"}},
	}
	seen := map[string]int{}
	for i, set := range sets {
		d := newDigester()
		for _, e := range set {
			d.add(e.table, e.key, []byte(e.value))
		}
		sum := d.sum()
		if j, ok := seen[sum]; ok {
			t.Errorf("sets %d and %d hash alike", j, i)
		}
		seen[sum] = i
	}
}

// The digest is what managers and workers of different releases compare:
// its bytes are pinned (length-prefixed table, key and value, in order).
func TestDigestIsPinned(t *testing.T) {
	d := newDigester()
	d.add("nodes", "a", []byte("bc"))
	d.add("tasks", "key", []byte(`{"ID":"t1"}`))
	d.add("tasks", "k2", nil)
	if got, want := d.sum(), "bcde3bc85e30dd423cc9d928a395e38d0d6724b6be99a1b37d5e85e9f616d2e3"; got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
}

func TestPublishWritesOnlyWhatChanged(t *testing.T) {
	db := NewFakeDB("m1")
	p := NewPublisher()
	publish(t, p, db, objects("t1", "t2"), 1)
	before := db.List(TableCluster, "")
	counted := &countingDB{FakeDB: db}
	publish(t, p, counted, objects("t1", "t2"), 1)
	if counted.writes != 0 {
		t.Errorf("republishing the same state wrote %d entries", counted.writes)
	}
	publish(t, p, counted, objects("t1", "t2"), 2)
	if counted.writes != 1 || head(t, db).Version != 2 {
		t.Errorf("a new version: %d writes, head %+v; want the head alone rewritten", counted.writes, head(t, db))
	}
	counted.writes = 0
	_ = db.Delete(TableCluster, "", HeadKey) // lost, e.g. dropped with this node by a peer and gossiped back empty
	publish(t, p, counted, objects("t1", "t2"), 2)
	if counted.writes != 1 || head(t, db).Digest != decodeOrZero(before[0].Value).Digest {
		t.Errorf("a missing head: %d writes, head %+v; want it rewritten alone", counted.writes, head(t, db))
	}
	counted.writes = 0
	publish(t, p, counted, objects("t1"), 3)
	if _, ok := db.Get(TableTasks, "", "t2"); ok || counted.writes != 2 {
		t.Errorf("t2 removed: still there %v, %d writes; want a delete and the head", ok, counted.writes)
	}
}

func decodeOrZero(b []byte) Head {
	h, _ := decodeHead(b)
	return h
}

// countingDB counts the writes that reach the store; failKey makes the
// write of that key fail.
type countingDB struct {
	*FakeDB
	writes  int
	failKey string
}

func (c *countingDB) Put(table, scope, key string, value []byte) error {
	if key == c.failKey {
		return errors.New("disk on fire")
	}
	c.writes++
	return c.FakeDB.Put(table, scope, key, value)
}

func (c *countingDB) Delete(table, scope, key string) error {
	c.writes++
	return c.FakeDB.Delete(table, scope, key)
}

// A failed write leaves the former head: it would certify tables that do
// not hold the state, and readers keep what they verified.
func TestPublishFailureWritesNoHead(t *testing.T) {
	db := NewFakeDB("m1")
	p := NewPublisher()
	publish(t, p, db, objects("t1"), 1)
	d := newDesired(t, db, t.TempDir())
	d.Current()
	failing := &countingDB{FakeDB: db, failKey: "t3"}
	err := p.Publish(failing, objects("t1", "t2", "t3"), 2, "")
	if err == nil || !strings.Contains(err.Error(), "publish tasks/t3") {
		t.Fatalf("err = %v, want the failed table and key", err)
	}
	if h := head(t, db); h.Version != 1 {
		t.Errorf("head after a failed publish: %+v, want the former one", h)
	}
	if got := d.Current(); len(got.Tasks) != 1 || d.Fresh() {
		t.Errorf("reader after a failed publish: %d tasks, fresh %v; want the former state, not fresh", len(got.Tasks), d.Fresh())
	}
	failing.failKey = ""
	publish(t, p, failing, objects("t1", "t2", "t3"), 2)
	if got := d.Current(); len(got.Tasks) != 3 || !d.Fresh() {
		t.Errorf("reader after the retry: %d tasks, fresh %v; want 3, fresh", len(got.Tasks), d.Fresh())
	}
}

// Whatever the tables show short of a state their head certifies, the
// reader keeps serving the state it verified.
func TestDesiredKeepsTheLastVerifiedState(t *testing.T) {
	served := objects("t1", "t2", "t3")
	tests := []struct {
		name    string
		change  func(t *testing.T, db *FakeDB)
		stale   string // in Info().Stale
		partial bool   // the tables do not hold what a good head certifies
	}{
		{name: "the leader's entries dropped", stale: "no head", change: func(t *testing.T, db *FakeDB) {
			for _, table := range append(desiredTables, TableCluster) {
				for _, e := range db.List(table, "") {
					_ = db.Delete(table, "", e.Key)
				}
			}
		}},
		{name: "head missing", stale: "no head", change: func(t *testing.T, db *FakeDB) {
			_ = db.Delete(TableCluster, "", HeadKey)
		}},
		{name: "an entry missing", partial: true, stale: "hold 5 entries, the head of m1 counts 6", change: func(t *testing.T, db *FakeDB) {
			_ = db.Delete(TableTasks, "", "t2")
		}},
		{name: "an entry changed", partial: true, stale: "do not match the digest", change: func(t *testing.T, db *FakeDB) {
			_ = db.Put(TableServices, "", "s1", []byte(`{"ID":"s1","Name":"web"}`))
		}},
		{name: "an entry too many", partial: true, stale: "hold 7 entries", change: func(t *testing.T, db *FakeDB) {
			_ = db.Put(TableTasks, "", "t9", []byte(`{"ID":"t9"}`))
		}},
		{name: "a new head before its entries", partial: true, stale: "hold 6 entries, the head of m2 counts 4", change: func(t *testing.T, db *FakeDB) {
			other := NewFakeDB("m2")
			publish(t, NewPublisher(), other, objects("t1"), 9)
			e, _ := other.Get(TableCluster, "", HeadKey)
			_ = db.PutAs("m2", TableCluster, "", HeadKey, e.Value)
		}},
		{name: "an older head", stale: "older than the state served (5)", change: func(t *testing.T, db *FakeDB) {
			publish(t, NewPublisher(), db, objects("t1"), 4)
		}},
		{name: "a corrupt head", stale: "decode head", change: func(t *testing.T, db *FakeDB) {
			_ = db.Put(TableCluster, "", HeadKey, []byte("{"))
		}},
		{name: "a head with a bad digest", stale: "head digest", change: func(t *testing.T, db *FakeDB) {
			_ = db.Put(TableCluster, "", HeadKey, []byte(`{"Leader":"m1","Version":9,"Digest":"ABCD","Entries":6}`))
		}},
		{name: "certified entries that do not decode", stale: "decode tasks/t2", change: func(t *testing.T, db *FakeDB) {
			_ = db.Put(TableTasks, "", "t2", []byte(`{"ID":7}`))
			h := head(t, db)
			tables, n := listDesired(db)
			h.Digest, h.Entries = digestEntries(tables), n
			b, _ := encodeHead(h)
			_ = db.Put(TableCluster, "", HeadKey, b)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := NewFakeDB("m1")
			publish(t, NewPublisher(), db, served, 5)
			d := newDesired(t, db, t.TempDir())
			d.Current()
			tt.change(t, db)
			if diff := cmp.Diff(served, d.Current()); diff != "" {
				t.Errorf("state served (-want +got):\n%s", diff)
			}
			info := d.Info()
			if info.Fresh || d.Fresh() || !strings.Contains(info.Stale, tt.stale) || info.Partial != tt.partial {
				t.Errorf("info %+v: want not fresh, partial %v, stale saying %q", info, tt.partial, tt.stale)
			}
			if info.Leader != "m1" || info.Version != 5 || info.Warning() != "manager unreachable: serving the last desired state" {
				t.Errorf("info %+v, warning %q: want m1's state at 5 served", info, info.Warning())
			}
		})
	}
}

// The republish of a restarted leader or a new one, seen in pieces: the
// reader serves the old state until the new one is complete, then the
// new one.
func TestDesiredAdoptsARepublishOnceComplete(t *testing.T) {
	db := NewFakeDB("w1")
	m1 := ownedBy{db, "m1"}
	publish(t, NewPublisher(), m1, objects("t1", "t2"), 5)
	d := newDesired(t, db, t.TempDir())
	d.Current()

	// m1 dies: gossip drops its entries. m2 publishes elsewhere; its
	// entries arrive here one by one, the head among them.
	for _, table := range append(desiredTables, TableCluster) {
		for _, e := range db.List(table, "") {
			_ = db.Delete(table, "", e.Key)
		}
	}
	elsewhere := NewFakeDB("m2")
	publish(t, NewPublisher(), elsewhere, objects("t1", "t3"), 6)
	var pieces []struct{ table, key string }
	for _, table := range append([]string{TableCluster}, desiredTables...) { // the head first
		for _, e := range elsewhere.List(table, "") {
			pieces = append(pieces, struct{ table, key string }{table, e.Key})
		}
	}
	for i, p := range pieces {
		e, _ := elsewhere.Get(p.table, "", p.key)
		_ = db.PutAs("m2", p.table, "", p.key, e.Value)
		got := d.Current()
		if last := i == len(pieces)-1; last {
			if diff := cmp.Diff(objects("t1", "t3"), got); diff != "" || !d.Fresh() {
				t.Errorf("complete republish: fresh %v, state (-want +got):\n%s", d.Fresh(), diff)
			}
		} else if diff := cmp.Diff(objects("t1", "t2"), got); diff != "" || d.Fresh() {
			t.Errorf("after %d of %d pieces: fresh %v, state (-want +got):\n%s", i+1, len(pieces), d.Fresh(), diff)
		}
	}
	if info := d.Info(); info.Leader != "m2" || info.Version != 6 {
		t.Errorf("info %+v: want m2 at 6", info)
	}
}

// A new leader takes the tables over: a former leader's entries that the
// state no longer holds are deleted whoever owns them, and every entry
// and the head become the new leader's.
func TestNewPublisherTakesOverTheTables(t *testing.T) {
	db := NewFakeDB("m2")
	publish(t, NewPublisher(), ownedBy{db, "m1"}, objects("t1", "t2", "gone"), 5)
	_ = db.PutAs("m0", TableNetworks, "", "ancient", []byte(`{"ID":"ancient"}`)) // an even older leader's, still alive
	publish(t, NewPublisher(), db, objects("t1", "t2"), 6)
	for _, table := range append(desiredTables, TableCluster) {
		for _, e := range db.List(table, "") {
			if e.Owner != "m2" {
				t.Errorf("%s/%s still owned by %s", table, e.Key, e.Owner)
			}
			if e.Key == "gone" || e.Key == "ancient" {
				t.Errorf("%s/%s left by a former leader is still there", table, e.Key)
			}
		}
	}
	d := newDesired(t, db, t.TempDir())
	if diff := cmp.Diff(objects("t1", "t2"), d.Current()); diff != "" || !d.Fresh() {
		t.Errorf("fresh %v, state (-want +got):\n%s", d.Fresh(), diff)
	}
	if h := head(t, db); h.Leader != "m2" {
		t.Errorf("head %+v: want m2's", h)
	}
}

// What was verified survives a restart: a node that comes back with no
// manager in sight serves it.
func TestDesiredPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	db := NewFakeDB("w1")
	publish(t, NewPublisher(), ownedBy{db, "m1"}, objects("t1", "t2"), 5)
	d := newDesired(t, db, dir)
	d.Current()
	path := filepath.Join(dir, "desired.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	restarted := newDesired(t, NewFakeDB("w1"), dir)
	if diff := cmp.Diff(objects("t1", "t2"), restarted.Current()); diff != "" {
		t.Errorf("state after restart (-want +got):\n%s", diff)
	}
	if info := restarted.Info(); info.Fresh || info.Leader != "m1" || info.Version != 5 {
		t.Errorf("info after restart %+v: want m1's state at 5, not fresh", info)
	}

	empty := newDesired(t, NewFakeDB("w1"), t.TempDir())
	if got := empty.Current(); len(got.Tasks) != 0 || got.Tasks == nil {
		t.Errorf("no file: %+v, want an empty state with its maps made", got)
	}
	if w := empty.Info().Warning(); w != "manager unreachable: no desired state known yet" {
		t.Errorf("no file: warning %q", w)
	}
}

func TestDesiredFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T, path string)
		wantErr string
	}{
		{name: "corrupt", wantErr: "decode", make: func(t *testing.T, path string) {
			writeFile(t, path, []byte(`{"Head":`))
		}},
		{name: "bad head", wantErr: "head names no leader", make: func(t *testing.T, path string) {
			writeFile(t, path, []byte(`{"Head":{"Digest":"00"},"Objects":{}}`))
		}},
		{name: "oversized", wantErr: "limit", make: func(t *testing.T, path string) {
			writeFile(t, path, nil)
			if err := os.Truncate(path, maxDesiredFile+1); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
		}},
		{name: "unreadable", wantErr: "read", make: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "desired.json")
			tt.make(t, path)
			_, err := NewDesired(NewFakeDB("w1"), path)
			if err == nil || !strings.Contains(err.Error(), "desired state") || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one naming the desired state, %s and %q", err, path, tt.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A state that cannot be saved is still served, and the save is retried.
func TestDesiredPersistFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	db := NewFakeDB("m1")
	publish(t, NewPublisher(), db, objects("t1"), 1)
	d, err := NewDesired(db, filepath.Join(dir, "sub", "desired.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Current(); len(got.Tasks) != 1 || !d.Fresh() {
		t.Errorf("state %+v: want served from memory", got)
	}
	if info := d.Info(); !strings.Contains(info.PersistErr, "save desired state") {
		t.Errorf("info %+v: want the save failure", info)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.Current()
	if info := d.Info(); info.PersistErr != "" {
		t.Errorf("info %+v: want the retried save to succeed", info)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "desired.json")); err != nil {
		t.Error(err)
	}
}

func FuzzDecodeHead(f *testing.F) {
	f.Add([]byte(`{"Leader":"m1","Version":3,"Digest":"` + strings.Repeat("ab", 32) + `","Entries":4}`))
	f.Add([]byte(`{"Leader":"","Version":0,"Digest":"","Entries":-1}`))
	f.Add([]byte(`{"Digest":"` + strings.Repeat("AB", 32) + `"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHead(b)
		if err != nil {
			return
		}
		if err := h.validate(); err != nil {
			t.Fatalf("decoded head %+v does not validate: %v", h, err)
		}
		enc, err := encodeHead(h)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeHead(enc)
		if err != nil || back != h {
			t.Fatalf("round trip of %+v: %+v, %v", h, back, err)
		}
	})
}

// TestDesiredFollowsEachChange: successive states, each changing,
// adding or removing one object, are served exactly as published,
// though only the entries that changed are decoded again.
func TestDesiredFollowsEachChange(t *testing.T) {
	db := NewFakeDB("m1")
	p := NewPublisher()
	d := newDesired(t, db, t.TempDir())
	o := objects("t1", "t2")
	steps := []func(o *Objects){
		func(o *Objects) {},
		func(o *Objects) { o.Services["s1"] = api.Service{ID: "s1", Name: "web"} },
		func(o *Objects) { t := o.Tasks["t1"]; t.Slot = 7; o.Tasks["t1"] = t },
		func(o *Objects) { delete(o.Tasks, "t2") },
		func(o *Objects) {
			o.Tasks["t3"] = api.Task{ID: "t3", ServiceID: "s1", ServiceName: "web", NodeID: "n1"}
		},
		func(o *Objects) { o.Services["s1"] = api.Service{ID: "s1", Name: "www", Replicas: 2} },
	}
	for i, change := range steps {
		next := Objects{Nodes: maps.Clone(o.Nodes), Networks: maps.Clone(o.Networks), Services: maps.Clone(o.Services), Tasks: maps.Clone(o.Tasks)}
		change(&next)
		publish(t, p, db, next, uint64(i+1))
		if diff := cmp.Diff(next, d.Current()); diff != "" {
			t.Fatalf("step %d: served state (-want +got):\n%s", i, diff)
		}
		o = next
	}
}

// listCounter counts the table listings of a FakeDB.
type listCounter struct {
	*FakeDB
	lists int
}

func (l *listCounter) List(table, scope string) []gossip.Entry {
	l.lists++
	return l.FakeDB.List(table, scope)
}

func TestDesiredLooksAgainOnlyWhenTheTablesMove(t *testing.T) {
	db := &listCounter{FakeDB: NewFakeDB("m1")}
	p := NewPublisher()
	d := newDesired(t, db, t.TempDir())
	publish(t, p, db, objects("t1"), 1)
	look := func(step string, wantList bool, want Objects) {
		t.Helper()
		before := db.lists
		got := d.Current()
		if listed := db.lists > before; listed != wantList {
			t.Errorf("%s: listed the tables %v, want %v", step, listed, wantList)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: served state (-want +got):\n%s", step, diff)
		}
		if !d.Fresh() {
			t.Errorf("%s: not fresh: %s", step, d.Info().Stale)
		}
	}
	look("first look", true, objects("t1"))
	look("nothing moved", false, objects("t1"))
	if err := db.Put(TableTaskStatus, "", "t1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	look("another table moved", false, objects("t1"))
	publish(t, p, db, objects("t1", "t2"), 2)
	look("a task published", true, objects("t1", "t2"))
	look("nothing moved again", false, objects("t1", "t2"))

	// A head that certifies entries not there yet is looked at again once
	// they come, and not before.
	h := head(t, db)
	h.Version, h.Entries = 3, h.Entries+1
	b, err := encodeHead(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutAs("m2", TableCluster, "", HeadKey, b); err != nil {
		t.Fatal(err)
	}
	d.Current()
	before := db.lists
	if d.Current(); db.lists != before || d.Fresh() || !d.Info().Partial {
		t.Errorf("partial tables, nothing moved: listed %v, fresh %v, partial %v", db.lists != before, d.Fresh(), d.Info().Partial)
	}
}

// The file written from the table values is the one json.Marshal would
// write for the state served, byte for byte: when the state is adopted,
// when it changes, and when a state read back from the file (no values)
// is written again under another leader.
func TestDesiredFileIsTheStateEncoded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "desired.json")
	wantFile := func(t *testing.T, d *Desired, o Objects) {
		t.Helper()
		want, err := json.Marshal(desiredFile{Head: headWire(d.head), Objects: o})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("file:\n%s\nwant:\n%s", got, want)
		}
	}
	o := objects("t1", "t2")
	o.Services["s<&>2"] = api.Service{ID: "s<&>2", Name: "é \"quoted\" <b>", Env: []string{"A=<&>"}}
	db := NewFakeDB("w1")
	publish(t, NewPublisher(), ownedBy{db, "m1"}, o, 5)
	d := newDesired(t, db, dir)
	wantFile(t, d, d.Current())
	if _, copied := copyDesiredFile(d.head, d.objs, d.raw); !copied {
		t.Fatal("the adopted state's file is encoded, not copied from its table values")
	}

	o.Tasks["t3"] = api.Task{ID: "t3", ServiceID: "s1", NodeID: "n1", DesiredState: api.TaskRunning}
	publish(t, NewPublisher(), ownedBy{db, "m1"}, o, 6)
	wantFile(t, d, d.Current())

	// Another leader publishes the same state: the digest is the same,
	// nothing is decoded, and the restarted node has no values to copy.
	db2 := NewFakeDB("w1")
	publish(t, NewPublisher(), ownedBy{db2, "m2"}, o, 7)
	restarted := newDesired(t, db2, dir)
	got := restarted.Current()
	if _, copied := copyDesiredFile(restarted.head, restarted.objs, restarted.raw); restarted.head.Leader != "m2" || copied {
		t.Fatalf("leader %q, copied %v: want m2's head adopted without decoding, nothing to copy", restarted.head.Leader, copied)
	}
	wantFile(t, restarted, got)

	// A value missing for one object (one of another in its place): the
	// state is encoded instead.
	raw := maps.Clone(d.raw)
	raw[entryKey{TableTasks, "t9"}] = raw[entryKey{TableTasks, "t3"}]
	delete(raw, entryKey{TableTasks, "t3"})
	if _, copied := copyDesiredFile(d.head, d.objs, raw); copied {
		t.Error("copied with a value missing")
	}
	b, err := encodeDesiredFile(d.head, d.objs, raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(desiredFile{Head: headWire(d.head), Objects: d.objs})
	if string(b) != string(want) {
		t.Errorf("with a value missing:\n%s\nwant:\n%s", b, want)
	}
}
