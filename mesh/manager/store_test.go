package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

func TestStorePersistsAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(StoreConfig{NodeID: "n1", Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bootstrap("n1", State{ClusterID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(func(st *State) error { st.Nodes["n1"] = api.Node{ID: "n1", Hostname: "node1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenStore(StoreConfig{NodeID: "n1", Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	testutil.Eventually(t, 5*time.Second, "the replayed state", func() error {
		if d := stateDiff(before, again.Snapshot()); d != "" {
			return fmt.Errorf("(-before +after):\n%s", d)
		}
		return nil
	})
	fi, err := os.Stat(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("raft log mode %v: others may read it (it holds the tokens)", fi.Mode().Perm())
	}
}

func TestStoreFailedUpdateChangesNothing(t *testing.T) {
	s := newTestStore(t)
	_, _ = s.Update(func(st *State) error { st.Nodes["n1"] = api.Node{ID: "n1"}; return nil })
	before, index := s.Snapshot(), s.raft.LastIndex()
	_, err := s.Update(func(st *State) error {
		st.Nodes["n2"] = api.Node{ID: "n2"}
		delete(st.Nodes, "n1")
		return errors.New("refused")
	})
	if err == nil {
		t.Fatal("update error swallowed")
	}
	if d := stateDiff(before, s.Snapshot()); d != "" || s.raft.LastIndex() != index {
		t.Errorf("failed update changed the state or the log (-before +after):\n%s", d)
	}
	if changed, err := s.Update(func(st *State) error { st.Nodes["n1"] = api.Node{ID: "n1"}; return nil }); changed || err != nil {
		t.Errorf("same-value update: changed %v, err %v; want false, nil", changed, err)
	}
	if s.raft.LastIndex() != index {
		t.Error("a same-value update was logged")
	}
}

// TestUpdateStartsFromARestoredState: a write computes from the state
// installed last, not from the encoding kept of the one before.
func TestUpdateStartsFromARestoredState(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Update(func(st *State) error { st.Nodes["n1"] = api.Node{ID: "n1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	snap, err := json.Marshal(s.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(func(st *State) error { st.Nodes["n2"] = api.Node{ID: "n2"}; return nil }); err != nil {
		t.Fatal(err)
	}
	// A write that changes nothing keeps the encoding of n1 and n2.
	if changed, err := s.Update(func(*State) error { return nil }); changed || err != nil {
		t.Fatalf("empty update: changed %v, err %v", changed, err)
	}
	if err := s.fsm.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(func(st *State) error {
		if _, ok := st.Nodes["n2"]; ok {
			return errors.New("the update was computed from the state before the restore")
		}
		st.Nodes["n3"] = api.Node{ID: "n3"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(s.Read().Nodes)); !slices.Equal(got, []string{"n1", "n3"}) {
		t.Errorf("nodes after restore and update: %v, want [n1 n3]", got)
	}
}

func TestCommandRefusesAStaleBase(t *testing.T) {
	var a State
	a.init()
	b := a.clone()
	b.ClusterID = "c"
	cmd, err := diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	a.Version = 7
	if _, err := cmd.apply(a); !errors.Is(err, errStaleBase) {
		t.Errorf("apply on another version: err %v, want errStaleBase", err)
	}
}

// TestDiffApplyRoundTrip checks on random states that applying the diff
// of a and b to a gives b, leaves a as it was (the new state shares what
// did not change with it), and carries only what changed; a field left
// out of b's JSON (an empty Rollouts) is cleared.
func TestDiffApplyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randomState := func() State {
		var s State
		s.init()
		s.ClusterID = fmt.Sprint("c", r.IntN(2))
		s.WorkerToken = fmt.Sprint("w", r.IntN(2))
		for i := range r.IntN(6) {
			id := fmt.Sprint("n", i+r.IntN(3))
			s.Nodes[id] = api.Node{ID: id, Hostname: fmt.Sprint("h", r.IntN(3))}
			s.Trusted[id] = fmt.Sprint("s", r.IntN(2))
		}
		for i := range r.IntN(6) {
			id := fmt.Sprint("s", i+r.IntN(3))
			s.Services[id] = api.Service{ID: id, Name: id, Replicas: r.IntN(3), Env: []string{fmt.Sprint("A=", r.IntN(2))}}
		}
		for i := range r.IntN(3) {
			s.Rollouts[fmt.Sprint("s", i)] = Rollout{Batch: []string{fmt.Sprint("t", r.IntN(2))}}
		}
		for range r.IntN(3) {
			s.GossipKeys = append(s.GossipKeys, []byte{byte(r.IntN(2))})
		}
		return s
	}
	for i := range 500 {
		a, b := randomState(), randomState()
		a.Version = uint64(i)
		cmd, err := diff(a, b)
		if err != nil {
			t.Fatal(err)
		}
		before := a.clone()
		got, err := cmd.apply(a)
		if err != nil {
			t.Fatal(err)
		}
		if d := stateDiff(b, got); d != "" || got.Version != a.Version+1 {
			t.Fatalf("case %d: apply(diff(a, b), a) != b (-want +got):\n%s", i, d)
		}
		if d := stateDiff(before, a); d != "" {
			t.Fatalf("case %d: apply changed the state it started from (-before +after):\n%s", i, d)
		}
		for k := range cmd.Put["Services"] {
			if ok := a.Services[k]; cmp.Equal(ok, b.Services[k]) {
				t.Fatalf("case %d: unchanged service %s in the diff", i, k)
			}
		}
	}
}

// cluster is n in-memory managers wired to each other.
func newTestCluster(t *testing.T, n int, mods ...func(i int, c *StoreConfig)) []*Store {
	t.Helper()
	trans := make([]*raft.InmemTransport, n)
	for i := range trans {
		_, trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprint("m", i)))
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	stores := make([]*Store, n)
	for i := range stores {
		cfg := StoreConfig{NodeID: fmt.Sprint("m", i), Transport: trans[i], Fast: true}
		for _, mod := range mods {
			mod(i, &cfg)
		}
		s, err := OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	if err := stores[0].Bootstrap("m0", State{ClusterID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := stores[0].AddVoter(fmt.Sprint("m", i), fmt.Sprint("m", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return stores
}

func leaderOf(t *testing.T, stores []*Store, skip int) *Store {
	t.Helper()
	var leader *Store
	testutil.Eventually(t, 10*time.Second, "a leader", func() error {
		for i, s := range stores {
			if i != skip && s.IsLeader() {
				leader = s
				return nil
			}
		}
		return errors.New("none leads")
	})
	return leader
}

func TestThreeManagersReplicateAndFailOver(t *testing.T) {
	stores := newTestCluster(t, 3)
	if _, err := stores[0].Update(func(st *State) error { st.Services["s1"] = api.Service{ID: "s1", Name: "www"}; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		testutil.Eventually(t, 5*time.Second, fmt.Sprint("m", i, " has www"), func() error {
			if s.Snapshot().Services["s1"].Name != "www" {
				return errors.New("not yet")
			}
			return nil
		})
	}
	if _, err := stores[1].Update(func(st *State) error { st.ClusterID = "x"; return nil }); !errors.Is(err, ErrNotLeader) {
		t.Errorf("write on a follower: err %v, want ErrNotLeader", err)
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal(err)
	}
	next := leaderOf(t, stores, 0)
	if _, err := next.Update(func(st *State) error { st.Services["s2"] = api.Service{ID: "s2", Name: "db"}; return nil }); err != nil {
		t.Fatalf("write through the new leader: %v", err)
	}
	if got := next.Snapshot(); got.Services["s1"].Name != "www" || got.ClusterID != "c1" {
		t.Errorf("the new leader lost the state: %+v", got.Services)
	}
}

// TestLeaderChanged: every manager is told the first leader, and the
// others the next one when it goes.
func TestLeaderChanged(t *testing.T) {
	var mu sync.Mutex
	seen := make([][]string, 3)
	stores := newTestCluster(t, 3, func(i int, c *StoreConfig) {
		c.LeaderChanged = func(id string) {
			mu.Lock()
			defer mu.Unlock()
			if id != "" {
				seen[i] = append(seen[i], id)
			}
		}
	})
	leaders := func(i int) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen[i])
	}
	for i := range stores {
		testutil.Eventually(t, 5*time.Second, fmt.Sprint("m", i, " told m0 leads"), func() error {
			if got := leaders(i); !slices.Equal(got, []string{"m0"}) {
				return fmt.Errorf("leaders %q", got)
			}
			return nil
		})
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal(err)
	}
	next := leaderOf(t, stores, 0)
	for i := 1; i < 3; i++ {
		testutil.Eventually(t, 5*time.Second, fmt.Sprint("m", i, " told the new leader"), func() error {
			got := leaders(i)
			if got[len(got)-1] != next.cfg.NodeID {
				return fmt.Errorf("leaders %q, want the last %s", got, next.cfg.NodeID)
			}
			return nil
		})
	}
}

func TestLostQuorumRefusesWrites(t *testing.T) {
	stores := newTestCluster(t, 3)
	leader := leaderOf(t, stores, -1)
	for _, s := range stores {
		if s != leader {
			_ = s.Close()
		}
	}
	before := leader.Snapshot()
	testutil.Eventually(t, 10*time.Second, "the lone manager refuses writes", func() error {
		_, err := leader.Update(func(st *State) error { st.ClusterID = "y"; return nil })
		if err == nil {
			return errors.New("a write succeeded without a quorum")
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, api.ErrNoLeader) {
			return fmt.Errorf("err %v, want ErrNotLeader or ErrNoLeader", err)
		}
		return nil
	})
	if leader.Snapshot().ClusterID != before.ClusterID {
		t.Error("a refused write changed the state")
	}
}

// sameJSON says whether two states are the same, Version aside.
func sameJSON(a, b State) bool { return stateDiff(a, b) == "" }

// stateDiff compares two states through their JSON (the allocator has no
// exported fields), Version aside.
func stateDiff(a, b State) string {
	a.Version, b.Version = 0, 0
	x, _ := json.MarshalIndent(a, "", " ")
	y, _ := json.MarshalIndent(b, "", " ")
	return cmp.Diff(string(x), string(y))
}

// diff returns the command that turns cur into next, as Store.Update
// computes it.
func diff(cur, next State) (command, error) {
	a, err := json.Marshal(cur)
	if err != nil {
		return command{}, err
	}
	b, err := json.Marshal(next)
	if err != nil {
		return command{}, err
	}
	x, err := splitState(a)
	if err != nil {
		return command{}, err
	}
	y, err := splitState(b)
	if err != nil {
		return command{}, err
	}
	return diffJSON(cur.Version, x, y)
}

// TestWriteStartsFromTheStateItWrote: the state a write proposed, once
// applied, encodes to the same JSON but for its Version, so the next
// write reuses its split rather than splitting the state again.
func TestWriteStartsFromTheStateItWrote(t *testing.T) {
	d := newFakeManager(t)
	for i := range 3 {
		if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: fmt.Sprint("svc", i), Image: "whoami",
			Ports: []api.PortConfig{{PublishedPort: uint16(20000 + i), TargetPort: 80}}}); err != nil {
			t.Fatal(err)
		}
		_, enc, err := d.store.fsm.encoded()
		if err != nil {
			t.Fatal(err)
		}
		if w := d.store.written; w == nil || !sameButVersion(w.raw, enc) {
			t.Errorf("write %d: the state applied does not encode as the one proposed", i)
		}
	}
}

func TestSameButVersion(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"Version":3,"ClusterID":"c"}`, `{"Version":4,"ClusterID":"c"}`, true},
		{`{"Version":3,"ClusterID":"c"}`, `{"Version":3,"ClusterID":"c"}`, true},
		{`{"Version":3,"ClusterID":"c"}`, `{"Version":4,"ClusterID":"d"}`, false},
		{`{"ClusterID":"c","Version":3}`, `{"ClusterID":"d","Version":3}`, false},
		{`{"Version":"c","ClusterID":"c"}`, `{"Version":"d","ClusterID":"c"}`, false},
		{`{"Version":3}`, `{"Version":4}`, false},
		{``, ``, false},
	}
	for _, tt := range tests {
		if got := sameButVersion([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("sameButVersion(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
