package records

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

func TestLogSubRoundTrip(t *testing.T) {
	db := NewFakeDB("m1")
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := LogSub{ID: "sub1", Manager: netip.MustParseAddrPort("192.168.33.10:2377"),
		Tasks: map[string][]string{"n1": {"t1"}, "n2": {"t2", "t3"}}, Tail: -1, Follow: true, Whole: []string{"t3"}, Expires: exp}
	if err := PutLogSub(db, want); err != nil {
		t.Fatal(err)
	}
	want.Owner = "m1"
	if diff := cmp.Diff([]LogSub{want}, LogSubs(db), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("LogSubs (-want +got):\n%s", diff)
	}
	if err := DeleteLogSub(db, "sub1"); err != nil || len(LogSubs(db)) != 0 {
		t.Errorf("after delete: %v, %v, want none", LogSubs(db), err)
	}
}

// TestLogSubBounds checks that a subscription out of bounds is refused on
// writing, and skipped when another node gossips it.
func TestLogSubBounds(t *testing.T) {
	many := make([]string, maxLogSubTasks+1)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	long := strings.Repeat("x", maxLogSubID+1)
	ok := func() LogSub {
		return LogSub{ID: "s", Manager: netip.MustParseAddrPort("10.0.0.1:2377"), Tasks: map[string][]string{"n1": {"t1"}},
			Tail: 3, Expires: time.Unix(1, 0)}
	}
	for _, tt := range []struct {
		name string
		edit func(*LogSub)
		want string
	}{
		{"no ID", func(s *LogSub) { s.ID = "" }, "ID"},
		{"long ID", func(s *LogSub) { s.ID = long }, "ID"},
		{"no manager", func(s *LogSub) { s.Manager = netip.AddrPort{} }, "manager"},
		{"tail too big", func(s *LogSub) { s.Tail = api.MaxTail + 1 }, "tail"},
		{"no expiry", func(s *LogSub) { s.Expires = time.Time{} }, "expiry"},
		{"empty node ID", func(s *LogSub) { s.Tasks = map[string][]string{"": {"t1"}} }, "node ID"},
		{"long task ID", func(s *LogSub) { s.Tasks = map[string][]string{"n1": {long}} }, "task ID"},
		{"too many tasks", func(s *LogSub) { s.Tasks = map[string][]string{"n1": many[:500], "n2": many[500:]} }, "over 1000 tasks"},
		{"too many read whole", func(s *LogSub) { s.Whole = []string{"t1", "t2"} }, "read whole"},
		{"long task ID read whole", func(s *LogSub) { s.Whole = []string{long} }, "task ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.edit(&s)
			db := NewFakeDB("m1")
			if err := PutLogSub(db, s); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("put: got %v, want an error about %s", err, tt.want)
			}
			// The same entry, gossiped by a node that skips the checks.
			b, err := json.Marshal(logSubWire{Manager: s.Manager.String(), Tasks: s.Tasks, Tail: s.Tail, Whole: s.Whole, Expires: s.Expires})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeLogSub(s.ID, b); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode: got %v, want an error about %s", err, tt.want)
			}
			if s.ID != "" {
				_ = db.PutAs("m2", TableLogSubs, "", s.ID, b)
				if got := LogSubs(db); len(got) != 0 {
					t.Errorf("read: got %+v, want it skipped", got)
				}
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		db := NewFakeDB("m1")
		_ = db.PutAs("m2", TableLogSubs, "", "s", []byte(`{"Manager":"nope"}`))
		_ = db.PutAs("m2", TableLogSubs, "", "s2", []byte(`[`))
		if got := LogSubs(db); len(got) != 0 {
			t.Errorf("got %+v, want both skipped", got)
		}
	})
}

// FuzzDecodeLogSub feeds any value to the decoder of a gossiped
// subscription: never a panic, and whatever it accepts keeps to the
// bounds and survives a write and a read. `go test` runs the seeds only.
func FuzzDecodeLogSub(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"Manager":"10.0.0.1:2377","Tasks":{"n1":["t1"]},"Tail":-5,"Expires":"2026-01-01T00:00:00Z"}`,
		`{"Manager":"[::1]:2377","Tasks":{"n1":[""]},"Tail":1,"Expires":"2026-01-01T00:00:00Z"}`,
		`{"Manager":"10.0.0.1:0","Tasks":null,"Tail":1e9}`, `{"Manager":"x","Tasks":{"":[]}}`,
	} {
		f.Add("sub1", []byte(s))
	}
	f.Fuzz(func(t *testing.T, id string, b []byte) {
		s, err := decodeLogSub(id, b)
		if err != nil {
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("accepted %q: %v", b, err)
		}
		if s.Tail < -1 || s.Tail > api.MaxTail {
			t.Fatalf("accepted tail %d", s.Tail)
		}
		if !utf8.ValidString(id) || len(id) > 512 {
			return // gossip refuses such keys before this decoder sees them
		}
		db := NewFakeDB("m1")
		if err := PutLogSub(db, s); err != nil {
			t.Fatalf("write back %+v: %v", s, err)
		}
		if got := LogSubs(db); len(got) != 1 || got[0].ID != s.ID || got[0].Tail != s.Tail {
			t.Fatalf("read back %+v, want %+v", got, s)
		}
	})
}
