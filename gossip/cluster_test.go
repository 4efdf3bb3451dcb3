package gossip

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
	"github.com/meshd/meshd/internal/testutil"
)

func TestEntrySeenOnAllNodes(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 3, stable)
	for i, db := range dbs {
		if err := db.Put("endpoint_table", "net1", fmt.Sprintf("ep%d", i), []byte(db.LocalName())); err != nil {
			t.Fatalf("%s: Put: %v", db.LocalName(), err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "entries spread", func() error {
		want := dbs[0].List("endpoint_table", "net1")
		if len(want) != 3 {
			return fmt.Errorf("%s lists %d entries, want 3", dbs[0].LocalName(), len(want))
		}
		for _, db := range dbs[1:] {
			if diff := cmp.Diff(want, db.List("endpoint_table", "net1")); diff != "" {
				return fmt.Errorf("%s differs from %s (-%s +%s):\n%s", db.LocalName(),
					dbs[0].LocalName(), dbs[0].LocalName(), db.LocalName(), diff)
			}
		}
		return nil
	})
	e, _ := dbs[2].Get("endpoint_table", "net1", "ep0")
	want := Entry{Table: "endpoint_table", Scope: "net1", Key: "ep0", Value: []byte("node1"), Owner: "node1", LTime: e.LTime}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("node3 Get(ep0) (-want +got):\n%s", diff)
	}
}

// TestCompressedAndPlainNodesTalk: a node with memberlist's compression
// (meshd's earlier versions) and one without exchange their state when
// one joins the other (push/pull and announce streams) and gossip each
// other's updates (packets), whichever way. The packets each sends show
// that one compresses and the other does not.
func TestCompressedAndPlainNodesTalk(t *testing.T) {
	log := testLogger(t)
	value := bytes.Repeat([]byte("10.0.0.2 "), 40) // compressible, as JSON is
	var oldSent, plainSent udpCount
	old := newNode(t, log, "node1", stable, func(c *Config) {
		c.compress, c.Transport = true, newCountingTransport(t, &oldSent)
	})
	for i := range 50 {
		if err := old.Put("endpoint_table", "net1", fmt.Sprintf("old%d", i), value); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	plain := newNode(t, log, "node2", stable, func(c *Config) { c.Transport = newCountingTransport(t, &plainSent) })
	for i := range 50 {
		if err := plain.Put("endpoint_table", "net1", fmt.Sprintf("plain%d", i), value); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	join(t, plain, old)
	waitMembers(t, old, plain)
	spread := func(want int) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, "entries spread", func() error {
			for _, db := range []*DB{old, plain} {
				if n := len(db.List("endpoint_table", "net1")); n != want {
					return fmt.Errorf("%s lists %d entries, want %d", db.LocalName(), n, want)
				}
			}
			return nil
		})
	}
	spread(100) // by the join's streams
	// Writes after the join travel in gossip packets, though the first
	// ones may still ride in the join's announcements: write until both
	// nodes have sent packets, each write reaching the other node.
	for i := 0; oldSent.compressed.Load() == 0 || plainSent.packets.Load() == 0; i++ {
		if i == 20 {
			t.Fatalf("after %d writes each, node1 sent %d compressed packets (of %d), node2 %d packets",
				i, oldSent.compressed.Load(), oldSent.packets.Load(), plainSent.packets.Load())
		}
		for _, db := range []*DB{old, plain} {
			if err := db.Put("endpoint_table", "net1", fmt.Sprintf("late-%s-%d", db.LocalName(), i), value); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		spread(100 + 2*(i+1))
	}
	if n := plainSent.compressed.Load(); n != 0 {
		t.Errorf("node2 sent %d compressed packets (of %d)", n, plainSent.packets.Load())
	}
}

// TestLocalStateFollowsTheStore: the state a push/pull sends is encoded
// once per version of the store: handed out again while nothing changed,
// and holding every change after one.
func TestLocalStateFollowsTheStore(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	d := delegate{db}
	state := func() []Entry {
		t.Helper()
		m, err := decodeMessage(d.LocalState(false))
		if err != nil {
			t.Fatalf("decode local state: %v", err)
		}
		return m.Entries
	}
	for i, step := range []func() error{
		func() error { return db.Put("tasks", "net1", "t1", []byte("running")) },
		func() error { return db.Put("tasks", "net1", "t1", []byte("stopped")) },
		func() error { return db.Delete("tasks", "net1", "t1") },
		func() error { return db.Put("services", "", "www", []byte("10.0.0.2")) },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		db.mu.Lock()
		want := db.st.entries(func(Entry) bool { return true })
		db.mu.Unlock()
		if diff := cmp.Diff(want, state()); diff != "" {
			t.Errorf("after step %d, local state (-store +sent):\n%s", i, diff)
		}
		if a, b := d.LocalState(false), d.LocalState(true); &a[0] != &b[0] {
			t.Errorf("after step %d, an unchanged store's state was encoded again", i)
		}
	}
}

func TestConvergesToNewest(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 3, stable)
	tests := []struct {
		name    string
		writers []int // index of the node doing each write, in order
		burst   bool  // all writes at once, from different goroutines
	}{
		{name: "successive writes by one node", writers: []int{0, 0, 0, 0}},
		{name: "successive writes by different nodes", writers: []int{0, 1, 2, 1}},
		{name: "concurrent writes by every node", writers: []int{0, 1, 2}, burst: true},
		{name: "concurrent writes, two per node", writers: []int{0, 1, 2, 0, 1, 2}, burst: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-")
			var wg sync.WaitGroup
			for i, w := range tc.writers {
				put := func() {
					if err := dbs[w].Put("services", "", key, fmt.Appendf(nil, "v%d", i)); err != nil {
						t.Errorf("Put: %v", err)
					}
				}
				if tc.burst {
					wg.Go(put)
				} else {
					put()
				}
			}
			wg.Wait()
			testutil.Eventually(t, 5*time.Second, "concurrent writes converge", func() error {
				first, ok := dbs[0].Get("services", "", key)
				if !ok {
					return fmt.Errorf("node1 has no %s", key)
				}
				for _, db := range dbs[1:] {
					if e, _ := db.Get("services", "", key); !cmp.Equal(first, e) {
						return fmt.Errorf("%s has %v %q, node1 has %v %q", db.LocalName(), e, e.Value, first, first.Value)
					}
				}
				return nil
			})
			if !tc.burst {
				last := fmt.Sprintf("v%d", len(tc.writers)-1)
				if err := sameEverywhere(dbs, "services", "", key, last); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestTombstoneReaped(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 3, stable, func(c *Config) { c.TombstoneTTL = 500 * time.Millisecond })
	if err := dbs[0].Put("tasks", "", "t1", []byte("running")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "t1 spread", func() error { return sameEverywhere(dbs, "tasks", "", "t1", "running") })
	if err := dbs[1].Delete("tasks", "", "t1"); err != nil {
		t.Fatal(err)
	}
	// Every node holds the tombstone before it is reaped: the TTL counts
	// from when each node got it.
	for _, db := range dbs {
		testutil.Eventually(t, 5*time.Second, "tombstone reaches every node", func() error {
			if e, ok := recordOf(db, "tasks", "", "t1"); !ok || !e.Deleted || e.Owner != "node2" {
				return fmt.Errorf("%s: record %v (present %v), want a tombstone by node2", db.LocalName(), e, ok)
			}
			return nil
		})
		if e, ok := db.Get("tasks", "", "t1"); ok {
			t.Errorf("%s: Get returned tombstone %v", db.LocalName(), e)
		}
	}
	testutil.Eventually(t, 5*time.Second, "tombstone reaped", func() error {
		for _, db := range dbs {
			if e, ok := recordOf(db, "tasks", "", "t1"); ok {
				return fmt.Errorf("%s still holds %v", db.LocalName(), e)
			}
		}
		return nil
	})
}

func TestDepartedOwnerEntriesDroppedAndRestored(t *testing.T) {
	tests := []struct {
		name  string
		stop  func(*DB) error
		state MemberState
	}{
		{name: "leave", state: StateLeft, stop: func(db *DB) error {
			if err := db.Leave(2 * time.Second); err != nil {
				return err
			}
			return db.Shutdown()
		}},
		{name: "die", state: StateDead, stop: (*DB).Shutdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testDepartedOwner(t, tc.stop, tc.state) })
	}
}

func testDepartedOwner(t *testing.T, stop func(*DB) error, state MemberState) {
	log := testLogger(t)
	dbs := newCluster(t, log, 3)
	for _, k := range []string{"k1", "k2"} {
		if err := dbs[2].Put("overlay_peer_table", "net1", k, []byte("old")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, "old value spread", func() error { return sameEverywhere(dbs, "overlay_peer_table", "net1", k, "old") })
	}
	events := dbs[0].Watch(t.Context(), "overlay_peer_table")
	_, port := dbs[2].LocalAddr()
	if err := stop(dbs[2]); err != nil {
		t.Fatalf("stop node3: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "node3 seen leaving", func() error {
		for _, db := range dbs[:2] {
			if got := stateOf(db, "node3"); got != state {
				return fmt.Errorf("%s sees node3 %v, want %v", db.LocalName(), got, state)
			}
			if got := db.NumAlive(); got != 2 {
				return fmt.Errorf("%s: NumAlive = %d, want 2", db.LocalName(), got)
			}
			if l := db.List("overlay_peer_table", AllScopes); len(l) != 0 {
				return fmt.Errorf("%s still lists %v", db.LocalName(), l)
			}
		}
		return nil
	})
	waitDeleted(t, events, "k1", "k2")

	// A new instance under the same name re-writes k1 only.
	node3 := newNode(t, log, "node3", func(c *Config) { c.BindPort = port })
	if err := node3.Put("overlay_peer_table", "net1", "k1", []byte("new")); err != nil {
		t.Fatal(err)
	}
	join(t, node3, dbs[0])
	dbs[2] = node3
	waitMembers(t, dbs...)
	testutil.Eventually(t, 10*time.Second, "restarted node3's value wins", func() error {
		if err := sameEverywhere(dbs, "overlay_peer_table", "net1", "k1", "new"); err != nil {
			return err
		}
		return sameEverywhere(dbs, "overlay_peer_table", "net1", "k2", "<none>")
	})
}

// A node that restarts before the others notice it died finds its old
// entries still in the cluster. It is their authority: what it re-wrote
// wins, and what it did not is deleted.
func TestRestartedOwnerDeletesStaleEntries(t *testing.T) {
	log := testLogger(t)
	dbs := newCluster(t, log, 3, stable) // nobody notices node3 is gone
	for _, k := range []string{"k1", "k2"} {
		if err := dbs[2].Put("endpoint_table", "", k, []byte("old")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, "old value spread", func() error { return sameEverywhere(dbs, "endpoint_table", "", k, "old") })
	}
	_, port := dbs[2].LocalAddr()
	if err := dbs[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	node3 := newNode(t, log, "node3", stable, func(c *Config) { c.BindPort = port })
	if err := node3.Put("endpoint_table", "", "k1", []byte("new")); err != nil {
		t.Fatal(err)
	}
	join(t, node3, dbs[0])
	dbs[2] = node3
	testutil.Eventually(t, 10*time.Second, "restarted node3's value wins", func() error {
		if err := sameEverywhere(dbs, "endpoint_table", "", "k1", "new"); err != nil {
			return err
		}
		return sameEverywhere(dbs, "endpoint_table", "", "k2", "<none>")
	})
	for _, db := range dbs {
		if got := stateOf(db, "node3"); got != StateAlive {
			t.Errorf("%s sees node3 %v, want alive", db.LocalName(), got)
		}
	}
}

func TestLateJoinerGetsEverythingByPushPull(t *testing.T) {
	log := testLogger(t)
	dbs := newCluster(t, log, 2, stable)
	for i, db := range dbs {
		for _, k := range []string{"a", "b", "gone"} {
			if err := db.Put("tasks", "net1", fmt.Sprintf("%s-%d", k, i), []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Delete("tasks", "net1", fmt.Sprintf("gone-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	want := func(db *DB) []Entry {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.st.entries(func(Entry) bool { return true })
	}
	testutil.Eventually(t, 5*time.Second, "node1 and node2 agree", func() error {
		if diff := cmp.Diff(want(dbs[0]), want(dbs[1])); diff != "" {
			return fmt.Errorf("node1 and node2 differ (-node1 +node2):\n%s", diff)
		}
		return nil
	})

	late := newNode(t, log, "late", stable)
	join(t, late, dbs[0])
	// No waiting: Join returns after the push/pull has been merged.
	if diff := cmp.Diff(want(dbs[0]), want(late)); diff != "" {
		t.Errorf("after Join, late differs from node1 (-node1 +late):\n%s", diff)
	}
}

func TestEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name string
		key  []byte
	}{
		{name: "other key", key: bytes.Repeat([]byte{2}, 16)},
		{name: "no key", key: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := testLogger(t)
			dbs := newCluster(t, log, 2, stable, func(c *Config) { c.SecretKey = key })
			if err := dbs[0].Put("networks", "", "ovnet", []byte("10.0.0.0/24")); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, "network spread", func() error { return sameEverywhere(dbs, "networks", "", "ovnet", "10.0.0.0/24") })

			intruder := newNode(t, log, "intruder", stable, func(c *Config) { c.SecretKey = tc.key })
			if err := intruder.Put("networks", "", "evil", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if n, err := intruder.Join([]string{addrOf(dbs[0])}); err == nil {
				t.Fatalf("intruder Join = %d, nil; want an error", n)
			}
			if got := intruder.List("networks", AllScopes); len(got) != 1 || got[0].Key != "evil" {
				t.Errorf("intruder lists %v, want only its own entry", got)
			}
			for _, db := range dbs {
				if _, ok := db.Get("networks", "", "evil"); ok {
					t.Errorf("%s accepted the intruder's entry", db.LocalName())
				}
				if got := stateOf(db, "intruder"); got != -1 {
					t.Errorf("%s knows the intruder as %v", db.LocalName(), got)
				}
			}
		})
	}
}

func TestDeleteScope(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 2, stable)
	puts := []struct {
		db                *DB
		table, scope, key string
	}{
		{dbs[0], "endpoint_table", "net1", "mine"},
		{dbs[0], "overlay_peer_table", "net1", "mine"},
		{dbs[0], "endpoint_table", "net2", "other-net"},
		{dbs[0], "networks", "", "cluster-wide"},
		{dbs[1], "endpoint_table", "net1", "theirs"},
	}
	for _, p := range puts {
		if err := p.db.Put(p.table, p.scope, p.key, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbs[0].DeleteScope("net1"); err != nil {
		t.Fatal(err)
	}
	type loc struct{ Table, Scope, Key string }
	testutil.Eventually(t, 5*time.Second, "scope deleted everywhere", func() error {
		for _, db := range dbs {
			var got []loc
			for _, table := range []string{"endpoint_table", "networks", "overlay_peer_table"} {
				for _, e := range db.List(table, AllScopes) {
					got = append(got, loc{e.Table, e.Scope, e.Key})
				}
			}
			want := []loc{{"endpoint_table", "net1", "theirs"}, {"endpoint_table", "net2", "other-net"},
				{"networks", "", "cluster-wide"}}
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("%s (-want +got):\n%s", db.LocalName(), diff)
			}
		}
		return nil
	})
}

func TestLargeValueGoesOverTCP(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 3, stable)
	big := bytes.Repeat([]byte("x"), 8<<10) // far over a UDP packet
	if err := dbs[0].Put("services", "", "big", big); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "big value spread", func() error { return sameEverywhere(dbs, "services", "", "big", string(big)) })
	bigger := append(big, big...)
	if err := dbs[1].Put("services", "", "big", bigger); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "bigger value spread", func() error { return sameEverywhere(dbs, "services", "", "big", string(bigger)) })
}

func TestMembersAndMeta(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 2, stable, func(c *Config) { c.Meta = []byte("role=worker") })
	if err := dbs[0].UpdateMeta([]byte("role=manager")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "meta spread", func() error {
		var got []string
		for _, m := range dbs[1].Members() {
			got = append(got, fmt.Sprintf("%s %v %s", m.Name, m.State, m.Meta))
		}
		if diff := cmp.Diff([]string{"node1 alive role=manager", "node2 alive role=worker"}, got); diff != "" {
			return fmt.Errorf("node2 Members (-want +got):\n%s", diff)
		}
		return nil
	})
	if got := dbs[1].NumAlive(); got != 2 {
		t.Errorf("node2: NumAlive = %d, want 2", got)
	}
	ip, port := dbs[0].LocalAddr()
	if m := dbs[1].Members()[0]; m.Addr != ip || m.Port != port {
		t.Errorf("node2 sees node1 at %s:%d, node1 says %s:%d", m.Addr, m.Port, ip, port)
	}
}

func TestClosed(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	if err := db.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := db.Put("t", "", "k", nil); err != ErrClosed {
		t.Errorf("Put after Leave = %v, want ErrClosed", err)
	}
	if err := db.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := db.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if _, err := db.Join([]string{"127.0.0.1:1"}); err != ErrClosed {
		t.Errorf("Join after Shutdown = %v, want ErrClosed", err)
	}
	if _, ok := <-db.Watch(t.Context(), "t"); ok {
		t.Error("Watch after Shutdown delivered an event, want a closed channel")
	}
}

func TestWritesRejectBadArguments(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	tests := []struct {
		name string
		do   func() error
		err  string
	}{
		{"empty table", func() error { return db.Put("", "", "k", nil) }, "empty table"},
		{"empty key", func() error { return db.Put("t", "", "", nil) }, "empty key"},
		{"reserved scope", func() error { return db.Put("t", AllScopes, "k", nil) }, "reserved"},
		{"value too big", func() error { return db.Put("t", "", "k", make([]byte, MaxValueSize+1)) }, "limit"},
		{"key not UTF-8", func() error { return db.Put("t", "", "k\xff", nil) }, "not UTF-8"},
		{"delete in reserved scope", func() error { return db.Delete("t", AllScopes, "k") }, "reserved"},
		{"delete all scopes", func() error { return db.DeleteScope(AllScopes) }, "reserved"},
		{"meta too big", func() error { return db.UpdateMeta(make([]byte, 513)) }, "meta is 513 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
	if got := db.List("t", AllScopes); got != nil {
		t.Errorf("List after rejected writes = %v, want nil", got)
	}
}

// memberlist's MockNetwork runs a cluster without sockets, as the mesh
// package's tests do.
func TestMockNetwork(t *testing.T) {
	// A MockNetwork must not gain transports while in use.
	var network memberlist.MockNetwork
	transports := make([]memberlist.Transport, 3)
	for i := range transports {
		transports[i] = network.NewTransport(fmt.Sprintf("node%d", i+1))
	}
	dbs := newMockCluster(t, testLogger(t), transports, stable)
	if err := dbs[2].Put("networks", "", "ingress", []byte("10.255.0.0/16")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "ingress spread", func() error { return sameEverywhere(dbs, "networks", "", "ingress", "10.255.0.0/16") })
}

// Updates written once a dead member is past GossipToTheDeadTime reach the
// live ones by gossip alone, not some of them waiting for push/pull:
// memberlist shares an update's retransmissions among its gossip targets,
// and one spent on a dead node is one a live node does not get. (With
// memberlist's 30 s, 4 runs in 5 lost 2 to 4 of these 60 updates.)
func TestUpdatesAfterADeathReachTheLiveByGossip(t *testing.T) {
	noPushPull := func(c *Config) { c.PushPullInterval = time.Hour }
	dbs := newCluster(t, testLogger(t), 3, noPushPull)
	if err := dbs[1].Shutdown(); err != nil {
		t.Fatalf("stop node2: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "node2 dead for GossipToTheDeadTime", func() error {
		for _, db := range []*DB{dbs[0], dbs[2]} {
			db.mu.Lock()
			r, ok := db.members["node2"]
			dead := ok && r.State == StateDead && time.Since(r.downAt) > db.cfg.GossipToTheDeadTime
			db.mu.Unlock()
			if !dead {
				return fmt.Errorf("%s: node2 not dead for %v yet", db.LocalName(), db.cfg.GossipToTheDeadTime)
			}
		}
		return nil
	})
	// A rescheduling's worth of writes, each too big to share a packet
	// with more than a few others.
	const n = 60
	value := bytes.Repeat([]byte("x"), 300)
	for i := range n {
		if err := dbs[0].Put("task_table", "", fmt.Sprintf("task%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 3*time.Second, "every write on node3", func() error {
		if got := len(dbs[2].List("task_table", "")); got != n {
			return fmt.Errorf("node3 lists %d of %d entries", got, n)
		}
		return nil
	})
}

// cuttable is a MockTransport whose sends to the addresses in cut are lost,
// as through a partition: packets vanish, streams cannot be opened.
type cuttable struct {
	*memberlist.MockTransport
	self string          // this transport's "ip:port"
	mu   *sync.Mutex     // guards cut
	cut  map[string]bool // the addresses on the far side; shared by every transport
}

func newCuttable(network *memberlist.MockNetwork, name string, mu *sync.Mutex, cut map[string]bool) cuttable {
	tr := network.NewTransport(name)
	ip, port, _ := tr.FinalAdvertiseAddr("", 0)
	return cuttable{tr, net.JoinHostPort(ip.String(), strconv.Itoa(port)), mu, cut}
}

// blocked says whether addr is on the other side of the partition.
func (c cuttable) blocked(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut[addr] != c.cut[c.self]
}

func (c cuttable) WriteTo(b []byte, addr string) (time.Time, error) {
	return c.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress hands the packet over from a goroutine of its own, as a
// network would. MockTransport's own send waits until the receiver's
// memberlist reads it, and memberlist answers a ping from the goroutine
// that reads packets: two nodes answering each other's pings at the same
// moment would each wait for the other for good. Under load that once
// froze two nodes, which then never noticed the partition. A packet to a
// node shut down meanwhile leaves its goroutine blocked until the test
// binary exits.
func (c cuttable) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.blocked(a.Addr) {
		return time.Now(), nil
	}
	buf := bytes.Clone(b)
	go func() { _, _ = c.MockTransport.WriteToAddress(buf, a) }()
	return time.Now(), nil
}

func (c cuttable) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return c.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (c cuttable) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.blocked(a.Addr) {
		return nil, fmt.Errorf("dial %s: no route to host", a.Addr)
	}
	return c.MockTransport.DialAddressTimeout(a, timeout)
}

// Two sides that declared each other dead find each other again when the
// partition heals, however long it lasted, and the entries each side
// dropped come back.
// partitionWait bounds each step of TestPartitionHeals. Failure
// detection and push/pull are timed by the memberlist's clocks, which a
// machine running the e2e suites beside this test stretches: a step
// takes a second or two when idle, and ten seconds was once not enough.
const partitionWait = 30 * time.Second

func TestPartitionHeals(t *testing.T) {
	var network memberlist.MockNetwork
	var mu sync.Mutex
	cut := map[string]bool{}
	transports := make([]memberlist.Transport, 3)
	for i := range transports {
		transports[i] = newCuttable(&network, fmt.Sprintf("node%d", i+1), &mu, cut)
	}
	dbs := newMockCluster(t, testLogger(t), transports)
	if err := dbs[2].Put("endpoint_table", "net1", "ep3", []byte("node3")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, partitionWait, "ep3 spread", func() error { return sameEverywhere(dbs, "endpoint_table", "net1", "ep3", "node3") })

	mu.Lock()
	cut[addrOf(dbs[2])] = true
	mu.Unlock()
	testutil.Eventually(t, partitionWait, "each side sees the other dead", func() error {
		for _, c := range []struct{ db, other *DB }{{dbs[0], dbs[2]}, {dbs[1], dbs[2]}, {dbs[2], dbs[0]}, {dbs[2], dbs[1]}} {
			if got := stateOf(c.db, c.other.LocalName()); got != StateDead {
				return fmt.Errorf("%s sees %s %v, want dead", c.db.LocalName(), c.other.LocalName(), got)
			}
		}
		return sameEverywhere(dbs[:2], "endpoint_table", "net1", "ep3", "<none>")
	})
	mu.Lock()
	clear(cut)
	mu.Unlock()
	waitMembersFor(t, partitionWait, dbs...)
	testutil.Eventually(t, partitionWait, "ep3 back", func() error { return sameEverywhere(dbs, "endpoint_table", "net1", "ep3", "node3") })
}

// SyncWith brings what gossip lost at once, without waiting for push/pull.
func TestSyncWithBringsWhatGossipLost(t *testing.T) {
	var network memberlist.MockNetwork
	var mu sync.Mutex
	cut := map[string]bool{}
	transports := []cuttable{newCuttable(&network, "node1", &mu, cut), newCuttable(&network, "node2", &mu, cut)}
	log := testLogger(t)
	noPushPull := func(c *Config) { c.PushPullInterval = time.Hour }
	node1 := newNode(t, log, "node1", stable, noPushPull, func(c *Config) { c.Transport = transports[0] })
	node2 := newNode(t, log, "node2", stable, noPushPull, func(c *Config) { c.Transport = transports[1] })
	join(t, node2, node1)
	waitMembers(t, node1, node2)

	mu.Lock()
	cut[transports[1].self] = true
	mu.Unlock()
	if err := node1.Put("task_table", "", "t1", []byte("running")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "node1's retransmissions spent", func() error {
		if n := node1.queue.NumQueued(); n != 0 {
			return fmt.Errorf("%d updates queued", n)
		}
		return nil
	})
	mu.Lock()
	clear(cut)
	mu.Unlock()
	if err := sameEverywhere([]*DB{node2}, "task_table", "", "t1", "<none>"); err != nil {
		t.Fatalf("before SyncWith: %v", err)
	}
	if err := node2.SyncWith("node1"); err != nil {
		t.Fatalf("SyncWith: %v", err)
	}
	if err := sameEverywhere([]*DB{node2}, "task_table", "", "t1", "running"); err != nil {
		t.Errorf("when SyncWith returned: %v", err)
	}
	if err := node2.SyncWith("node9"); err == nil {
		t.Errorf("SyncWith(node9), no such member: no error")
	}
}

// TestGeneration: every change to a table's live entries, written here or
// gossiped, moves its generation, and nothing else does.
func TestGeneration(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 2, stable)
	a, b := dbs[0], dbs[1]
	step := func(what string, db *DB, table string, want uint64) {
		t.Helper()
		if got := db.Generation(table); got != want {
			t.Errorf("%s: %s's generation of %s is %d, want %d", what, db.LocalName(), table, got, want)
		}
	}
	step("nothing written", a, "services", 0)
	if err := a.Put("services", "", "s1", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	step("a put", a, "services", 1)
	step("a put", a, "tasks", 0)
	if err := a.Put("services", "", "s1", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	step("the same value again", a, "services", 2)
	if err := a.Delete("services", "", "absent"); err != nil {
		t.Fatal(err)
	}
	step("a delete of nothing", a, "services", 2)
	if err := a.Delete("services", "", "s1"); err != nil {
		t.Fatal(err)
	}
	step("a delete", a, "services", 3)
	if err := a.Put("services", "", "s2", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "s2 reaches node2", func() error {
		if _, ok := b.Get("services", "", "s2"); !ok {
			return fmt.Errorf("node2 has no s2")
		}
		return nil
	})
	if b.Generation("services") == 0 {
		t.Errorf("node2's generation of services did not move with what gossip brought")
	}
}
