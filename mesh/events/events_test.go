package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 123456789, time.UTC)

func ev(i int, typ string) Event {
	return Event{Time: t0.Add(time.Duration(i) * time.Second), Type: typ, Action: "a", ID: fmt.Sprint(i)}
}

func ids(es []Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestLogBoundedAndQuery(t *testing.T) {
	l := New(3)
	for i := range 5 {
		l.Add(ev(i, api.EventTypes[i%len(api.EventTypes)]))
	}
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all kept", Query{}, []string{"2", "3", "4"}},
		{"since", Query{Since: t0.Add(3 * time.Second)}, []string{"3", "4"}},
		{"until", Query{Until: t0.Add(3 * time.Second)}, []string{"2", "3"}},
		{"type", Query{Types: []string{api.EventTypes[3]}}, []string{"3"}},
		{"two types", Query{Types: []string{api.EventTypes[0], api.EventTypes[2]}}, []string{"2", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ids(l.Events(tt.q))); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddStampsTime(t *testing.T) {
	l := New(0)
	l.now = func() time.Time { return t0 }
	l.Add(Event{Type: TypeNode})
	if got := l.Events(Query{})[0].Time; !got.Equal(t0) {
		t.Errorf("time = %v, want %v", got, t0)
	}
}

func TestSubscribe(t *testing.T) {
	l := New(10)
	l.Add(ev(0, TypeNode))
	l.Add(ev(1, TypeTask))
	past, s := l.Subscribe(Query{Types: []string{TypeNode}})
	defer s.Close()
	if diff := cmp.Diff([]string{"0"}, ids(past)); diff != "" {
		t.Errorf("past (-want +got):\n%s", diff)
	}
	l.Add(ev(2, TypeTask))
	l.Add(ev(3, TypeNode))
	if got := (<-s.C()).ID; got != "3" {
		t.Errorf("streamed %s, want 3", got)
	}
}

// TestSlowSubscriber: a subscriber that never reads neither blocks Add
// nor loses count of what it missed.
func TestSlowSubscriber(t *testing.T) {
	l := New(10)
	_, s := l.Subscribe(Query{})
	n := subBuffer + 5
	for i := range n {
		l.Add(ev(i, TypeNode)) // would hang here if Add blocked
	}
	if got := s.Dropped(); got != 5 {
		t.Errorf("dropped %d, want 5", got)
	}
	s.Close()
	s.Close()
	got := 0
	for range s.C() {
		got++
	}
	if got != subBuffer {
		t.Errorf("received %d, want %d", got, subBuffer)
	}
	l.Add(ev(n, TypeNode)) // after Close: must not panic
}

func TestNilLog(t *testing.T) {
	var l *Log
	l.Add(ev(0, TypeNode))
	if got := l.Events(Query{}); got != nil {
		t.Errorf("got %v, want none", got)
	}
	_, s := l.Subscribe(Query{})
	s.Close()
}
