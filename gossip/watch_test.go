package gossip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// change is the part of an Event the tests predict.
type change struct {
	Type  EventType
	Key   string
	Value string
	Owner string
}

func changeOf(ev Event) change {
	return change{ev.Type, ev.Entry.Key, string(ev.Entry.Value), ev.Entry.Owner}
}

// next reads one event from ch, failing the test after a few seconds.
func next(t *testing.T, ch <-chan Event) change {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return changeOf(ev)
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return change{}
}

// waitClosed fails the test unless ch is closed within a few seconds.
func waitClosed(t *testing.T, ch <-chan Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 5s")
		}
	}
}

// waitDeleted reads ch until the last event of each key is a Delete that
// carries its value, failing the test after a few seconds.
func waitDeleted(t *testing.T, ch <-chan Event, keys ...string) {
	t.Helper()
	last := map[string]Event{}
	deadline := time.After(5 * time.Second)
	for {
		done := true
		for _, k := range keys {
			if ev := last[k]; ev.Type != Delete || !ev.Entry.Deleted || ev.Entry.Value == nil {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			last[ev.Entry.Key] = ev
		case <-deadline:
			t.Fatalf("want deletes of %v; last events: %+v", keys, last)
		}
	}
}

func TestWatchDeliversChangesInOrder(t *testing.T) {
	dbs := newCluster(t, testLogger(t), 2, stable)
	if err := dbs[0].Put("tasks", "", "existing", []byte("e")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "existing entry spread", func() error { return sameEverywhere(dbs, "tasks", "", "existing", "e") })

	local := dbs[0].Watch(t.Context(), "tasks")
	remote := dbs[1].Watch(t.Context(), "tasks")
	steps := []struct {
		name  string
		do    func() error
		event change
	}{
		{"replay", func() error { return nil }, change{Create, "existing", "e", "node1"}},
		{"put", func() error { return dbs[0].Put("tasks", "", "t1", []byte("v1")) }, change{Create, "t1", "v1", "node1"}},
		{"other table", func() error { return dbs[0].Put("services", "", "s1", []byte("ignored")) }, change{}},
		{"update", func() error { return dbs[0].Put("tasks", "", "t1", []byte("v2")) }, change{Update, "t1", "v2", "node1"}},
		{"update elsewhere", func() error { return dbs[1].Put("tasks", "", "t1", []byte("v3")) }, change{Update, "t1", "v3", "node2"}},
		{"delete", func() error { return dbs[0].Delete("tasks", "", "t1") }, change{Delete, "t1", "v3", "node1"}},
		{"put again", func() error { return dbs[0].Put("tasks", "", "t1", []byte("v4")) }, change{Create, "t1", "v4", "node1"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.event == (change{}) {
			continue
		}
		// Wait for each step on both nodes, so the remote one cannot skip
		// a version that gossip delivered late.
		for name, ch := range map[string]<-chan Event{"node1": local, "node2": remote} {
			if got := next(t, ch); got != s.event {
				t.Fatalf("%s: %s got %+v, want %+v", s.name, name, got, s.event)
			}
		}
	}
}

func TestWatchSlowReaderLosesNothing(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	ch := db.Watch(t.Context(), "")
	const n = 2000
	var want []change
	for i := range n {
		key := fmt.Sprintf("k%d", i%10)
		typ := Create
		if i >= 10 {
			typ = Update
		}
		if err := db.Put("tasks", "", key, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, change{typ, key, fmt.Sprint(i), "node1"})
	}
	var got []change
	for range n {
		got = append(got, next(t, ch))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestWatchClosed(t *testing.T) {
	db := newNode(t, testLogger(t), "node1")
	ctx, cancel := context.WithCancel(t.Context())
	byCtx := db.Watch(ctx, "tasks")
	byShutdown := db.Watch(t.Context(), "tasks")
	if err := db.Put("tasks", "", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, byCtx)
	if got := next(t, byShutdown); got != (change{Create, "k", "v", "node1"}) {
		t.Errorf("got %+v, want the create of k", got)
	}
	if err := db.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, byShutdown)
}
