// Package portmux splits one TCP listener in two by the first byte a
// client sends: the cluster port (2377) carries both the HTTP API and the
// managers' raft traffic, as Swarm's does, and raft connections announce
// themselves with a byte no HTTP request starts with.
package portmux

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Config configures a [Mux].
type Config struct {
	// Magic is the first byte of a connection that goes to the second
	// listener; it is consumed. Every other connection goes to the first
	// with its first byte put back.
	Magic byte
	// SniffTimeout bounds the wait for the first byte; zero means 5 s.
	SniffTimeout time.Duration
	// MaxPending bounds connections whose first byte has not arrived yet;
	// more are closed at once. Zero means 128.
	MaxPending int
}

// Mux owns a listener and hands its connections to two others.
type Mux struct {
	ln      net.Listener
	cfg     Config
	pending chan struct{}
	first   *sub
	second  *sub
}

// New splits ln; call Serve to start accepting.
func New(ln net.Listener, cfg Config) *Mux {
	if cfg.SniffTimeout <= 0 {
		cfg.SniffTimeout = 5 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 128
	}
	done := make(chan struct{})
	var once sync.Once
	closeAll := func() error {
		var err error
		once.Do(func() { close(done); err = ln.Close() })
		return err
	}
	return &Mux{ln: ln, cfg: cfg, pending: make(chan struct{}, cfg.MaxPending),
		first:  &sub{addr: ln.Addr(), conns: make(chan net.Conn), done: done, close: closeAll},
		second: &sub{addr: ln.Addr(), conns: make(chan net.Conn), done: done, close: closeAll}}
}

// Default is the listener of every connection not starting with Magic.
func (m *Mux) Default() net.Listener { return m.first }

// Magic is the listener of connections starting with Magic.
func (m *Mux) Magic() net.Listener { return m.second }

// Serve accepts until the listener is closed (by closing either sub
// listener) and returns the error that ended it.
func (m *Mux) Serve() error {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			_ = m.first.close()
			return err
		}
		select {
		case m.pending <- struct{}{}:
			go m.route(c)
		default:
			c.Close() // too many silent clients: refuse rather than queue
		}
	}
}

func (m *Mux) route(c net.Conn) {
	defer func() { <-m.pending }()
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(m.cfg.SniffTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	to := m.first
	var conn net.Conn = &peeked{Conn: c, first: b[0], has: true}
	if b[0] == m.cfg.Magic {
		to, conn = m.second, c
	}
	select {
	case to.conns <- conn:
	case <-to.done:
		c.Close()
	}
}

// sub is one side of the split, a net.Listener fed by the mux.
type sub struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	close func() error
}

var errClosed = errors.New("portmux: listener closed")

func (s *sub) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: s.addr, Err: errClosed}
	}
}

func (s *sub) Close() error   { return s.close() }
func (s *sub) Addr() net.Addr { return s.addr }

// peeked is a connection whose first byte was read and is given back.
type peeked struct {
	net.Conn
	first byte
	has   bool
}

func (p *peeked) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		// A short read, rather than a read that might block with a byte
		// already in hand.
		b[0], p.has = p.first, false
		return 1, nil
	}
	return p.Conn.Read(b)
}
