package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// fakeManager stands for the managers the pusher sends to: it records
// each push it is sent, by subscription, and its records as they come.
type fakeManager struct {
	mu      sync.Mutex
	pushes  map[string]int // pushes started, by subscription
	ended   map[string]int // pushes whose body ended
	records chan api.LogPush
}

func newFakeManager() *fakeManager {
	return &fakeManager{pushes: map[string]int{}, ended: map[string]int{}, records: make(chan api.LogPush, 100)}
}

func (m *fakeManager) push(ctx context.Context, addr netip.AddrPort, id string, body io.Reader) error {
	m.mu.Lock()
	m.pushes[id]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.ended[id]++
		m.mu.Unlock()
	}()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var rec api.LogPush
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return err
		}
		m.records <- rec
	}
	return sc.Err()
}

func (m *fakeManager) counts(id string) (started, ended int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pushes[id], m.ended[id]
}

// next returns the next record pushed, failing after a few seconds.
func (m *fakeManager) next(t *testing.T) api.LogPush {
	t.Helper()
	select {
	case rec := <-m.records:
		return rec
	case <-time.After(5 * time.Second):
		t.Fatal("no record pushed")
		return api.LogPush{}
	}
}

// newTestPusher runs a pusher for node n1 whose tasks' output files are
// under a temporary directory; ended tasks are those in the map.
func newTestPusher(t *testing.T) (*records.FakeDB, *fakeManager, func(id, text string), *sync.Map) {
	t.Helper()
	db := records.NewFakeDB("n1")
	dir := t.TempDir()
	logPath := func(id string) string { return filepath.Join(dir, id, "task.log") }
	write := func(id, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(logPath(id)), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(logPath(id), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	var ended sync.Map
	m := newFakeManager()
	p := newLogPusher(db, "n1", logPath, func(id string) bool { _, ok := ended.Load(id); return ok }, m.push,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return db, m, write, &ended
}

func putSub(t *testing.T, db *records.FakeDB, s records.LogSub) {
	t.Helper()
	s.Manager = netip.MustParseAddrPort("192.168.33.10:2377")
	if s.Expires.IsZero() {
		s.Expires = time.Now().Add(time.Minute)
	}
	b, err := json.Marshal(map[string]any{"Manager": s.Manager.String(), "Tasks": s.Tasks, "Tail": s.Tail, "Follow": s.Follow, "Whole": s.Whole, "Expires": s.Expires})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutAs("m1", records.TableLogSubs, "", s.ID, b); err != nil {
		t.Fatal(err)
	}
}

func TestPushTail(t *testing.T) {
	db, m, write, ended := newTestPusher(t)
	write("t1", "a\nb\nc\n")
	write("t2", "x\ny")     // a last line without its newline
	ended.Store("t9", true) // ended, and its output gone
	putSub(t, db, records.LogSub{ID: "s1", Tail: 2, Tasks: map[string][]string{"n1": {"t1", "t2", "t9"}, "n2": {"t3"}}})

	got := map[string][]string{}
	for range 5 {
		rec := m.next(t)
		if rec.Err != "" {
			got[rec.Task] = append(got[rec.Task], "error: "+rec.Err)
			continue
		}
		got[rec.Task] = append(got[rec.Task], rec.Line)
	}
	want := map[string][]string{"t1": {"b", "c"}, "t2": {"x", "y"}, "t9": {"error: this node no longer keeps its output"}}
	for id, lines := range want {
		if strings.Join(got[id], "|") != strings.Join(lines, "|") {
			t.Errorf("task %s: got %q, want %q", id, got[id], lines)
		}
	}
	// Without follow the push ends once each task gave its tail, and is
	// not made again while the subscription lasts.
	deadline := time.Now().Add(5 * time.Second)
	for started, done := m.counts("s1"); started != 1 || done != 1; started, done = m.counts("s1") {
		if time.Now().After(deadline) {
			t.Fatalf("got %d pushes started, %d ended, want 1 and 1", started, done)
		}
		time.Sleep(10 * time.Millisecond)
	}
	putSub(t, db, records.LogSub{ID: "s1", Tail: 2, Tasks: map[string][]string{"n1": {"t1"}}}) // a refresh
	// Subscriptions this node has nothing for, or expired, get no push.
	putSub(t, db, records.LogSub{ID: "other", Tasks: map[string][]string{"n2": {"t3"}}})
	putSub(t, db, records.LogSub{ID: "old", Tasks: map[string][]string{"n1": {"t1"}}, Expires: time.Now().Add(-time.Second)})
	putSub(t, db, records.LogSub{ID: "probe", Tail: 0, Tasks: map[string][]string{"n1": {"t1"}}})
	for started, _ := m.counts("probe"); started == 0; started, _ = m.counts("probe") {
		if time.Now().After(deadline) {
			t.Fatal("no push for the probe subscription")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range []string{"s1", "other", "old"} {
		if started, _ := m.counts(id); started != map[string]int{"s1": 1}[id] {
			t.Errorf("subscription %s: got %d pushes, want %d", id, started, map[string]int{"s1": 1}[id])
		}
	}
}

func TestPushFollow(t *testing.T) {
	db, m, write, _ := newTestPusher(t)
	write("t1", "old\n")
	putSub(t, db, records.LogSub{ID: "s1", Tail: 1, Follow: true, Tasks: map[string][]string{"n1": {"t1", "t2"}}})
	if rec := m.next(t); rec.Task != "t1" || rec.Line != "old" {
		t.Fatalf("got %+v, want t1's tail first", rec)
	}
	write("t1", "new\n")
	write("t2", "late start\n") // a task whose file came after the subscription
	got := map[string]string{}
	for range 2 {
		rec := m.next(t)
		got[rec.Task] = rec.Line
	}
	if got["t1"] != "new" || got["t2"] != "late start" {
		t.Errorf("got %q, want t1's new line and t2's first", got)
	}
	// The followed service gives this node a new task: a second push
	// reads it from its start.
	write("t3", "first\nsecond\n")
	putSub(t, db, records.LogSub{ID: "s1", Tail: 1, Follow: true, Whole: []string{"t3"}, Tasks: map[string][]string{"n1": {"t1", "t3"}}})
	for _, want := range []string{"first", "second"} {
		if rec := m.next(t); rec.Task != "t3" || rec.Line != want {
			t.Errorf("got %+v, want t3's %q", rec, want)
		}
	}
	if started, _ := m.counts("s1"); started != 2 {
		t.Errorf("got %d pushes, want 2", started)
	}
	// The subscription goes: the pushes end.
	if err := db.Delete(records.TableLogSubs, "", "s1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, done := m.counts("s1"); done != 2; _, done = m.counts("s1") {
		if time.Now().After(deadline) {
			t.Fatal("the push did not end with its subscription")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{task: "t1", send: func(r api.LogPush) error { got = append(got, r.Line); return nil }}
	long := strings.Repeat("x", 2*api.MaxLogLine+5)
	for _, chunk := range []string{"a\n\nb", "c\n", long[:100], long[100:] + "\nend"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "", "bc", long[:api.MaxLogLine], long[api.MaxLogLine : 2*api.MaxLogLine], "xxxxx", "end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %d lines %.60q, want %d lines %.60q", len(got), got, len(want), want)
	}
}
