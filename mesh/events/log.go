// Package events is meshd's event log, in the shape of Docker's events:
// what this node saw happen (a node going down, a task changing state, a
// backend added or drained, drift repaired), kept in memory and streamed
// by GET /events on the unix socket to `meshctl events`.
//
// The log is bounded (the last [DefaultSize] events) and is not persisted:
// a restarted meshd starts with an empty log, as dockerd does. Producers
// never wait: [Log.Add] hands an event to each subscriber through a
// bounded channel and drops it for a subscriber that is too slow, which
// then learns it missed some (see [Sub.Dropped]).
package events

import (
	"slices"
	"sync"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Types of events, as the API names them.
const (
	TypeNode    = api.EventNode
	TypeTask    = api.EventTask
	TypeBackend = api.EventBackend
	TypeDrift   = api.EventDrift
)

// DefaultSize is how many events a [Log] keeps: enough for a lab's
// minutes of churn, and at a few hundred bytes each well under a megabyte.
const DefaultSize = 1000

// subBuffer is how many events a subscriber may lag behind before the
// next ones are dropped for it.
const subBuffer = 256

// Event is one thing that happened, as this node saw it; the API's type,
// so that what is kept is what is served.
type Event = api.Event

// Query selects events: those at or after Since and at or before Until
// (zero: unbounded), of one of Types (empty: all).
type Query struct {
	Since, Until time.Time
	Types        []string
}

// Match reports whether e is selected by q.
func (q Query) Match(e Event) bool {
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && e.Time.After(q.Until) {
		return false
	}
	return len(q.Types) == 0 || slices.Contains(q.Types, e.Type)
}

// Log is a bounded in-memory event log. Its methods may be called from any
// goroutine, and on a nil *Log, where Add does nothing and the rest find
// nothing: code and tests without events pass nil.
type Log struct {
	size int
	now  func() time.Time

	mu   sync.Mutex // guards the fields below
	ring []Event    // the last size events, oldest first
	subs map[*Sub]bool
}

// New returns a log keeping the last size events (0: DefaultSize).
func New(size int) *Log {
	if size <= 0 {
		size = DefaultSize
	}
	return &Log{size: size, now: time.Now, subs: map[*Sub]bool{}}
}

// Add records e, stamping it with the current time if it has none, and
// hands it to the subscribers. It never blocks: a subscriber whose buffer
// is full misses it. The attributes map is owned by the log afterwards.
func (l *Log) Add(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) >= l.size {
		l.ring = slices.Delete(l.ring, 0, len(l.ring)-l.size+1)
	}
	l.ring = append(l.ring, e)
	for s := range l.subs {
		s.send(e)
	}
}

// Events returns the events kept that q selects, oldest first.
func (l *Log) Events(q Query) []Event {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.ring {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Subscribe returns the events kept that q selects and a subscription to
// the ones added later that q selects, with nothing lost or repeated in
// between. The caller must Close the subscription.
func (l *Log) Subscribe(q Query) ([]Event, *Sub) {
	s := &Sub{q: q, ch: make(chan Event, subBuffer), log: l}
	if l == nil {
		return nil, s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []Event
	for _, e := range l.ring {
		if q.Match(e) {
			past = append(past, e)
		}
	}
	l.subs[s] = true
	return past, s
}

// Sub is a subscription to a [Log]'s new events.
type Sub struct {
	q   Query
	ch  chan Event
	log *Log

	mu      sync.Mutex // guards the fields below
	dropped int
	closed  bool
}

// C delivers the events; it is closed by Close.
func (s *Sub) C() <-chan Event { return s.ch }

// Dropped returns how many events this subscription missed because its
// reader was too slow.
func (s *Sub) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// send is called with the log's lock held.
func (s *Sub) send(e Event) {
	if !s.q.Match(e) {
		return
	}
	select {
	case s.ch <- e:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// Close ends the subscription and closes C. It may be called more than
// once.
func (s *Sub) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	if s.log != nil {
		s.log.mu.Lock()
		delete(s.log.subs, s)
		s.log.mu.Unlock()
	}
	close(s.ch)
}
