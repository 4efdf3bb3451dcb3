package gossip

import (
	"context"
	"sync"
)

// Watch returns a channel of the changes to table ("" for every table), in
// the order this node applied them. It starts with a Create for every live
// entry of the table, sorted by scope and key, so that a reconciler needs no
// separate List and misses nothing between the two.
//
// Each watcher has its own unbounded queue: a slow reader never blocks
// gossip and never loses an event, at the cost of memory while it lags.
// The channel is closed when ctx ends or the DB shuts down; events not yet
// read are then dropped. The entries carry their own copies of values.
func (db *DB) Watch(ctx context.Context, table string) <-chan Event {
	out := make(chan Event)
	w := &watcher{table: table, signal: make(chan struct{}, 1)}
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, e := range db.st.entries(func(e Entry) bool {
		return !e.Deleted && (table == "" || e.Table == table)
	}) {
		w.push(Event{Type: Create, Entry: e.clone()})
	}
	if !db.goLocked(func(dbCtx context.Context) { db.runWatcher(ctx, dbCtx, w, out) }) {
		close(out)
		return out
	}
	db.watchers[w] = struct{}{}
	return out
}

// watcher is one Watch call's queue.
type watcher struct {
	table  string
	signal chan struct{} // holds a token when queue may be non-empty

	mu    sync.Mutex // guards the fields below
	queue []Event
}

// push queues ev without blocking.
func (w *watcher) push(ev Event) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watcher) pop() (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		w.queue = nil // let a long backlog's array go
		return Event{}, false
	}
	ev := w.queue[0]
	w.queue[0] = Event{}
	w.queue = w.queue[1:]
	return ev, true
}

// runWatcher feeds out from w's queue until ctx or the DB ends.
func (db *DB) runWatcher(ctx, dbCtx context.Context, w *watcher, out chan<- Event) {
	defer close(out)
	defer func() {
		db.mu.Lock()
		delete(db.watchers, w)
		db.mu.Unlock()
	}()
	for {
		ev, ok := w.pop()
		if !ok {
			select {
			case <-w.signal:
				continue
			case <-ctx.Done():
				return
			case <-dbCtx.Done():
				return
			}
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		case <-dbCtx.Done():
			return
		}
	}
}
