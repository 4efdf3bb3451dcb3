package gossip

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meshd/meshd/internal/testutil"
)

// Address plan: every node listens on 127.0.0.1 with a port the kernel
// picks (LocalConfig), except a restarted node, which takes its old port
// back as a real node would keep 7946.

// testLogger returns a logger whose output the test prints if it fails.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	var buf testutil.Buffer
	// Registered first, so it runs after the nodes' Shutdown cleanups.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newNode starts a node with LocalConfig changed by mods, and shuts it down
// when the test ends.
func newNode(t testing.TB, log *slog.Logger, name string, mods ...func(*Config)) *DB {
	t.Helper()
	cfg := LocalConfig()
	cfg.Name = name
	cfg.Logger = log
	for _, mod := range mods {
		mod(&cfg)
	}
	var db *DB
	var err error
	// A restarted node binds its old port, which the kernel may not have
	// released yet.
	for try := 0; try < 50; try++ {
		if db, err = New(cfg); err == nil || cfg.BindPort == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = db.Shutdown() })
	return db
}

// stable slows failure detection down so that no node is suspected while a
// test runs, however loaded the machine: for the tests that are not about
// failures, where a flapping node would change the outcome.
func stable(c *Config) {
	c.ProbeInterval, c.ProbeTimeout = 10*time.Second, 5*time.Second
}

// newCluster starts n nodes named node1…nodeN, all joined through node1.
func newCluster(t testing.TB, log *slog.Logger, n int, mods ...func(*Config)) []*DB {
	t.Helper()
	return newMockCluster(t, log, make([]memberlist.Transport, n), mods...)
}

// newMockCluster is newCluster with one memberlist transport per node
// (a MockNetwork's, without sockets); a nil one is a real UDP and TCP one.
func newMockCluster(t testing.TB, log *slog.Logger, transports []memberlist.Transport, mods ...func(*Config)) []*DB {
	t.Helper()
	dbs := make([]*DB, len(transports))
	for i, tr := range transports {
		nodeMods := mods
		if tr != nil {
			nodeMods = append(slices.Clone(mods), func(c *Config) { c.Transport = tr })
		}
		dbs[i] = newNode(t, log, "node"+strconv.Itoa(i+1), nodeMods...)
		if i > 0 {
			join(t, dbs[i], dbs[0])
		}
	}
	waitMembers(t, dbs...)
	return dbs
}

func join(t testing.TB, db, to *DB) {
	t.Helper()
	if _, err := db.Join([]string{addrOf(to)}); err != nil {
		t.Fatalf("%s: Join(%s): %v", db.LocalName(), to.LocalName(), err)
	}
}

func addrOf(db *DB) string {
	ip, port := db.LocalAddr()
	return ip + ":" + strconv.Itoa(port)
}

// waitMembers waits until every node sees every other one alive.
func waitMembers(t testing.TB, dbs ...*DB) {
	t.Helper()
	waitMembersFor(t, 5*time.Second, dbs...)
}

// waitMembersFor is waitMembers with its bound: after a partition heals,
// refuting the suspicions takes memberlist's probe rounds, which a busy
// machine stretches.
func waitMembersFor(t testing.TB, d time.Duration, dbs ...*DB) {
	t.Helper()
	testutil.Eventually(t, d, "every member alive everywhere", func() error {
		for _, db := range dbs {
			for _, other := range dbs {
				if got := stateOf(db, other.LocalName()); got != StateAlive {
					return fmt.Errorf("%s sees %s %v, want alive", db.LocalName(), other.LocalName(), got)
				}
			}
		}
		return nil
	})
}

// stateOf returns how db sees the member name, or -1 if it does not know it.
func stateOf(db *DB, name string) MemberState {
	for _, m := range db.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return -1
}

// valueOn says what each node holds at (table, scope, key): its value, or
// "<none>".
func valuesOn(dbs []*DB, table, scope, key string) map[string]string {
	out := make(map[string]string, len(dbs))
	for _, db := range dbs {
		out[db.LocalName()] = "<none>"
		if e, ok := db.Get(table, scope, key); ok {
			out[db.LocalName()] = string(e.Value)
		}
	}
	return out
}

// sameEverywhere returns an error unless every node holds value at the key
// (value "<none>": holds nothing there).
func sameEverywhere(dbs []*DB, table, scope, key, value string) error {
	for name, got := range valuesOn(dbs, table, scope, key) {
		if got != value {
			return fmt.Errorf("%s: %s/%s/%s = %q, want %q", name, table, scope, key, got, value)
		}
	}
	return nil
}

// record returns db's record at a key, tombstones included.
func recordOf(db *DB, table, scope, key string) (Entry, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	r, ok := db.st.records[entryKey{table, scope, key}]
	if !ok {
		return Entry{}, false
	}
	return r.Entry, true
}
