package records

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// A log subscription is how a manager serving service logs asks the nodes
// for their tasks' output: workers listen on no port, so each node named
// pushes to the manager's cluster API instead (see mesh/agent's logs.go).
// The manager that serves the request owns the entry and removes it when
// the request ends; gossip removes it if that manager dies, and Expires
// covers a manager that restarted before it was found dead (it refreshes
// the entry while the request lasts; nodes' clocks are taken to agree
// within much less than the minute an entry lasts unrefreshed).

// Bounds of a subscription, checked on writing and on decoding.
const (
	maxLogSubTasks = 1000 // task IDs in one subscription, all nodes together
	maxLogSubID    = 64   // bytes of an ID (subscription, node, task)
)

// LogSub is a log subscription: the tasks whose output a manager wants,
// by node, and where to send it.
type LogSub struct {
	ID      string              // the entry's key: random, the push path's last element
	Manager netip.AddrPort      // the cluster API to push to
	Tasks   map[string][]string // node ID → the task IDs it runs
	Tail    int                 // the last lines of each task; negative: all
	Follow  bool                // then what the tasks write, until the entry goes
	// Whole are tasks among Tasks read from their start whatever Tail
	// says: those a followed service started after the request.
	Whole   []string
	Expires time.Time // the entry counts until then
	Owner   string    // the manager that wrote it (from gossip)
}

// logSubWire is the JSON on the wire; its field names MUST NOT change.
type logSubWire struct {
	Manager string              `json:"Manager"`
	Tasks   map[string][]string `json:"Tasks"`
	Tail    int                 `json:"Tail"`
	Follow  bool                `json:"Follow,omitempty"`
	Whole   []string            `json:"Whole,omitempty"`
	Expires time.Time           `json:"Expires"`
}

// check holds s to the bounds: a bad entry is refused on writing and
// skipped on reading, never acted on.
func (s LogSub) check() error {
	switch {
	case s.ID == "" || len(s.ID) > maxLogSubID:
		return fmt.Errorf("log subscription ID %q: want 1 to %d bytes", s.ID, maxLogSubID)
	case !s.Manager.IsValid() || s.Manager.Port() == 0:
		return fmt.Errorf("log subscription %s: no manager address", s.ID)
	case s.Tail > api.MaxTail:
		return fmt.Errorf("log subscription %s: tail %d over %d", s.ID, s.Tail, api.MaxTail)
	case s.Expires.IsZero():
		return fmt.Errorf("log subscription %s: no expiry", s.ID)
	}
	n := 0
	for node, ids := range s.Tasks {
		if node == "" || len(node) > maxLogSubID {
			return fmt.Errorf("log subscription %s: node ID %q: want 1 to %d bytes", s.ID, node, maxLogSubID)
		}
		for _, id := range ids {
			if id == "" || len(id) > maxLogSubID {
				return fmt.Errorf("log subscription %s: task ID %q: want 1 to %d bytes", s.ID, id, maxLogSubID)
			}
		}
		if n += len(ids); n > maxLogSubTasks {
			return fmt.Errorf("log subscription %s: over %d tasks", s.ID, maxLogSubTasks)
		}
	}
	if len(s.Whole) > n {
		return fmt.Errorf("log subscription %s: more tasks read whole than tasks", s.ID)
	}
	for _, id := range s.Whole {
		if id == "" || len(id) > maxLogSubID {
			return fmt.Errorf("log subscription %s: task ID %q: want 1 to %d bytes", s.ID, id, maxLogSubID)
		}
	}
	return nil
}

// PutLogSub publishes a subscription, owned by this node.
func PutLogSub(db DB, s LogSub) error {
	if s.Tail < 0 {
		s.Tail = -1
	}
	if err := s.check(); err != nil {
		return err
	}
	b, err := json.Marshal(logSubWire{Manager: s.Manager.String(), Tasks: s.Tasks, Tail: s.Tail, Follow: s.Follow,
		Whole: s.Whole, Expires: s.Expires.UTC()})
	if err != nil {
		return tableErr("encode", TableLogSubs, s.ID, err)
	}
	return db.Put(TableLogSubs, "", s.ID, b)
}

// DeleteLogSub withdraws a subscription; absent is fine.
func DeleteLogSub(db DB, id string) error { return db.Delete(TableLogSubs, "", id) }

// LogSubs lists the subscriptions that decode and keep to the bounds,
// expired ones included (the reader decides with its own clock).
func LogSubs(db DB) []LogSub {
	var out []LogSub
	for _, e := range db.List(TableLogSubs, "") {
		if s, err := decodeLogSub(e.Key, e.Value); err == nil {
			s.Owner = e.Owner
			out = append(out, s)
		}
	}
	return out
}

func decodeLogSub(id string, b []byte) (LogSub, error) {
	var w logSubWire
	if err := json.Unmarshal(b, &w); err != nil {
		return LogSub{}, err
	}
	addr, err := netip.ParseAddrPort(w.Manager)
	if err != nil {
		return LogSub{}, fmt.Errorf("log subscription %s: manager %q: %w", id, w.Manager, err)
	}
	s := LogSub{ID: id, Manager: addr, Tasks: w.Tasks, Tail: w.Tail, Follow: w.Follow, Whole: w.Whole, Expires: w.Expires}
	if s.Tail < 0 {
		s.Tail = -1
	}
	return s, s.check()
}
