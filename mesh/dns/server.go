package dns

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by [Server.Attach] after [Server.Close].
var ErrClosed = errors.New("dns: server closed")

// Server is the node's embedded DNS: one record table and one forwarder
// shared by a [Resolver] per task. All methods may be called from any
// goroutine.
type Server struct {
	ttl         uint32
	maxInFlight int
	fwd         *forwarder
	ex          *exchanger  // the default Exchange's sockets; nil with Config.Exchange
	observe     ObserveFunc // nil: none
	log         *slog.Logger
	table       atomic.Pointer[Table] // swapped whole; nil answers nothing
	// portableUDP serves UDP with x/net's batches where raw calls would
	// do (udpio_linux.go): the tests cover the other systems' way so.
	portableUDP bool
	// lastOverloadLog is when a Resolver last warned that it refuses
	// queries, in Unix nanoseconds: one warning per interval per node.
	lastOverloadLog atomic.Int64

	mu        sync.Mutex // guards the fields below
	resolvers map[*Resolver]struct{}
	closed    bool
}

// New validates cfg (naming the offending field in the error), applies
// defaults to zero fields, reads the upstream servers from resolv.conf
// when cfg has none, and returns a Server with an empty table. cfg is
// copied: changing it later has no effect.
func New(cfg Config) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		ttl:         uint32(c.TTL.Seconds()),
		maxInFlight: c.MaxInFlight,
		observe:     c.Observe,
		log:         c.Logger,
		resolvers:   map[*Resolver]struct{}{},
	}
	exchange := c.Exchange
	if exchange == nil {
		s.ex = newExchanger()
		exchange = s.ex.Exchange
	}
	s.fwd = newForwarder(c.logUpstreams(), c.Timeout, exchange, c.Logger)
	return s, nil
}

// SetTable installs t for every later query of every task; queries being
// answered finish with the table they started with. t must not be changed
// afterwards (a Table never is). Nil empties the table.
func (s *Server) SetTable(t *Table) { s.table.Store(t) }

// Attach starts answering q on pc (UDP) and ln (TCP), sockets the caller
// opened inside the task's network namespace; either may be nil, not
// both. The Resolver takes ownership of both and closes them in
// [Resolver.Close]. Serving runs in goroutines of the calling process, in
// whatever namespace their threads are in: the sockets are already bound
// where they must be.
func (s *Server) Attach(q Querier, pc net.PacketConn, ln net.Listener) (*Resolver, error) {
	if pc == nil && ln == nil {
		return nil, errors.New("dns: attach: no socket")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := newResolver(s, q, pc, ln)
	s.resolvers[r] = struct{}{}
	r.start()
	return r, nil
}

// detach forgets r once it is closed.
func (s *Server) detach(r *Resolver) {
	s.mu.Lock()
	delete(s.resolvers, r)
	s.mu.Unlock()
}

// Close closes every Resolver, waits for their goroutines, and makes
// later Attach calls fail. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	rs := make([]*Resolver, 0, len(s.resolvers))
	for r := range s.resolvers {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.Close())
	}
	s.fwd.cancel() // the flights nobody waits for any more
	s.fwd.wg.Wait()
	if s.ex != nil {
		s.ex.Close()
	}
	return errors.Join(errs...)
}
