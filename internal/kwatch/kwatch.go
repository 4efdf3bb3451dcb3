package kwatch

import (
	"sync"
)

// Kind says what changed in a namespace.
type Kind int

const (
	// Stack is links, addresses, routes, neighbours and FDB entries.
	Stack Kind = iota
	// Rules is iptables (nftables) rules, chains and tables.
	Rules
)

func (k Kind) String() string {
	if k == Rules {
		return "rules"
	}
	return "stack"
}

// Watcher watches namespaces and calls its notify function with the path
// of a namespace ("" is the caller's own) whenever the kernel reports a
// change there that may undo meshd's work. notify may be called from
// several goroutines at once and must not block for long.
type Watcher struct {
	notify func(ns string, k Kind)
	ours   func(pid int) bool

	mu     sync.Mutex
	subs   map[string]*subscription
	closed bool
}

// New returns a Watcher that reports to notify. ours, if not nil, names
// the processes whose nftables commits are the caller's own (the
// announcement of a commit says which process made it): their removals
// are not reported, as the caller knows of them.
func New(notify func(ns string, k Kind), ours func(pid int) bool) *Watcher {
	return &Watcher{notify: notify, ours: ours, subs: map[string]*subscription{}}
}

// Watch starts watching the namespace at ns ("" = the caller's own); a
// namespace already watched is left as it is. It fails when the sockets
// cannot be opened in the namespace (gone, or not Linux).
func (w *Watcher) Watch(ns string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	if _, ok := w.subs[ns]; ok {
		return nil
	}
	s, err := subscribe(ns, w.notify, w.ours)
	if err != nil {
		return err
	}
	w.subs[ns] = s
	return nil
}

// Unwatch stops watching ns; one not watched is fine.
func (w *Watcher) Unwatch(ns string) {
	w.mu.Lock()
	s := w.subs[ns]
	delete(w.subs, ns)
	w.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// Watching reports whether ns is watched.
func (w *Watcher) Watching(ns string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.subs[ns]
	return ok
}

// Close stops every watch.
func (w *Watcher) Close() {
	w.mu.Lock()
	subs := w.subs
	w.subs, w.closed = map[string]*subscription{}, true
	w.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
}
