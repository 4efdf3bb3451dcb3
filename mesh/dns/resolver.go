package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Serving limits. They bound what one task can make its resolver hold.
const (
	// udpBufSize is the read buffer of a UDP worker: the largest query
	// taken. Queries are a question and perhaps an OPT record, far below.
	udpBufSize = ednsSize
	// tcpIdle is how long a TCP connection may wait for its next query
	// (RFC 7766 suggests seconds; miekg/dns uses 8 s).
	tcpIdle = 10 * time.Second
	// maxTCPConns bounds one task's open TCP connections; past it new
	// ones are closed at once. Clients open one per truncated answer.
	maxTCPConns = 128
)

// udpWorkers is how many goroutines read a task's UDP socket. Reads are
// serialised by the socket anyway; more readers let answers be built and
// sent while the next query is read, up to the number of CPUs.
var udpWorkers = min(runtime.GOMAXPROCS(0), 4)

// Resolver answers one task's queries, as 127.0.0.11 in its namespace.
// It is made by [Server.Attach]; its methods may be called from any
// goroutine.
type Resolver struct {
	srv     *Server
	querier atomic.Pointer[Querier]
	sem     chan struct{} // one token per forwarded query in flight
	pc      net.PacketConn
	ln      net.Listener
	tcp     chan struct{} // one token per open TCP connection

	ctx    context.Context // ends at Close: stops loops and forwards
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of this resolver
	once   sync.Once
}

func newResolver(s *Server, q Querier, pc net.PacketConn, ln net.Listener) *Resolver {
	r := &Resolver{srv: s, sem: make(chan struct{}, s.maxInFlight), pc: pc, ln: ln,
		tcp: make(chan struct{}, maxTCPConns)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.SetQuerier(q)
	return r
}

func (r *Resolver) start() {
	if r.pc != nil {
		for range udpWorkers {
			r.wg.Go(func() { r.serveUDP(r.ctx, r.pc) })
		}
	}
	if r.ln != nil {
		r.wg.Go(func() { r.serveTCP(r.ctx, r.ln) })
	}
}

// SetQuerier changes what the task sees, after a network connect or
// disconnect; the next query uses it. q is copied.
func (r *Resolver) SetQuerier(q Querier) {
	q.Networks = slices.Clone(q.Networks)
	r.querier.Store(&q)
}

// Close stops serving: it closes both sockets, abandons forwarded queries
// (their clients get nothing, as from a dead server), and waits for every
// goroutine of the Resolver. It is safe to call more than once.
func (r *Resolver) Close() error {
	var errs []error
	r.once.Do(func() {
		r.cancel()
		if r.pc != nil {
			errs = append(errs, r.pc.Close())
		}
		if r.ln != nil {
			errs = append(errs, r.ln.Close())
		}
		r.wg.Wait()
		r.srv.detach(r)
	})
	return errors.Join(errs...)
}

// serveUDP answers datagrams until the socket is closed. Local answers
// are sent from this goroutine; forwarded ones from their own. A
// *net.UDPConn is read and written with netip addresses, which allocate
// nothing per query.
func (r *Resolver) serveUDP(ctx context.Context, pc net.PacketConn) {
	buf := make([]byte, udpBufSize+1)
	out := make([]byte, udpBufSize+1)
	uc, _ := pc.(*net.UDPConn)
	for {
		var n int
		var from netip.AddrPort
		var addr net.Addr
		var err error
		if uc != nil {
			n, from, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			n, addr, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			r.srv.log.Debug("dns: udp read", "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a broken socket
			continue
		}
		if n > udpBufSize {
			continue // larger than any query we take: drop
		}
		r.handle(ctx, buf[:n], "udp", out, func(b []byte) {
			if b == nil {
				return
			}
			var err error
			var client any = from
			if uc != nil {
				_, err = uc.WriteToUDPAddrPort(b, from)
			} else {
				_, err = pc.WriteTo(b, addr)
				client = addr
			}
			if err != nil && ctx.Err() == nil {
				r.srv.log.Debug("dns: udp write", "client", client, "err", err)
			}
		})
	}
}

// serveTCP accepts connections until the listener is closed.
func (r *Resolver) serveTCP(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			r.srv.log.Debug("dns: tcp accept", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		select {
		case r.tcp <- struct{}{}:
		default:
			c.Close() // over the bound: the client retries later
			continue
		}
		r.wg.Go(func() {
			defer func() { <-r.tcp }()
			r.serveConn(ctx, c)
		})
	}
}

// serveConn answers length-prefixed queries on one connection, in order
// of arrival, until the client closes it, idles, or the Resolver closes.
func (r *Resolver) serveConn(ctx context.Context, c net.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var mu sync.Mutex     // serialises writes of local and forwarded answers
	var wg sync.WaitGroup // forwarded answers still to write
	defer c.Close()       // last: after the pending answers
	defer wg.Wait()
	reply := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(b)))
		if _, err := (&net.Buffers{l[:], b}).WriteTo(c); err != nil {
			r.srv.log.Debug("dns: tcp write", "client", c.RemoteAddr(), "err", err)
		}
	}
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:])) // a forward may keep it
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		wg.Add(1)
		r.handle(ctx, msg, "tcp", nil, func(b []byte) {
			if b != nil {
				reply(b)
			}
			wg.Done()
		})
	}
}
