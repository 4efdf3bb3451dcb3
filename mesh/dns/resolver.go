package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
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

// udpWorkers is how many goroutines read a task's UDP socket. One, as
// dnsmasq serves with one thread: reads are serialised by the socket
// anyway, and with batches a second reader only adds wake-ups (it waits
// on the socket's read lock and is woken after every batch).
const udpWorkers = 1

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

	// batch writes pc's datagrams in batches (sendmmsg), and rc is pc's
	// raw access (see udpio_linux.go); both nil when pc is no
	// *net.UDPConn.
	batch *ipv4.PacketConn
	rc    syscall.RawConn
	outMu sync.Mutex        // guards out
	out   []forwardedAnswer // forwarded answers to send at the flight's flush

	ctx    context.Context // ends at Close: stops loops and forwards
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of this resolver
	once   sync.Once
}

func newResolver(s *Server, q Querier, pc net.PacketConn, ln net.Listener) *Resolver {
	r := &Resolver{srv: s, sem: make(chan struct{}, s.maxInFlight), pc: pc, ln: ln,
		tcp: make(chan struct{}, maxTCPConns)}
	if uc, ok := pc.(*net.UDPConn); ok {
		r.batch = ipv4.NewPacketConn(uc)
		if !s.portableUDP {
			r.rc, _ = uc.SyscallConn() // nil: the portable batches
		}
	}
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

// udpBatch is how many datagrams a UDP worker reads, and answers, with
// one system call each way.
const udpBatch = 32

// serveUDP answers datagrams until the socket is closed. A *net.UDPConn
// is served in batches (recvmmsg and sendmmsg on Linux): a busy task's
// queries arrive in bursts, and a system call and a wake-up per datagram
// were most of the server's CPU. Local answers are sent with the batch;
// forwarded ones in a batch per flight (flushForwarded).
func (r *Resolver) serveUDP(ctx context.Context, pc net.PacketConn) {
	if r.batch != nil {
		r.serveUDPBatch(ctx)
		return
	}
	buf := make([]byte, udpBufSize+1)
	out := make([]byte, udpBufSize+1)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if r.readFailed(ctx, err) {
				return
			}
			continue
		}
		if n > udpBufSize {
			continue // larger than any query we take: drop
		}
		r.handle(ctx, buf[:n], "udp", out, func(b []byte) { r.writeUDP(ctx, pc, b, addr) })
	}
}

// readFailed logs a failed read and says whether serving must stop.
func (r *Resolver) readFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return true
	}
	r.srv.log.Debug("dns: udp read", "err", err)
	time.Sleep(10 * time.Millisecond) // do not spin on a broken socket
	return false
}

// writeUDP sends one answer; nil is a drop.
func (r *Resolver) writeUDP(ctx context.Context, pc net.PacketConn, b []byte, addr net.Addr) {
	if b == nil {
		return
	}
	if _, err := pc.WriteTo(b, addr); err != nil && ctx.Err() == nil {
		r.srv.log.Debug("dns: udp write", "client", addr, "err", err)
	}
}

// udpSlot is one datagram of a batch and its answer.
type udpSlot struct {
	in, out []byte
	mu      sync.Mutex // guards the fields below, shared with forwards
	query   uint64     // counts the datagrams the slot held: whose answer
	open    bool       // the batch still takes the answer to query
	answer  []byte     // nil: none (dropped, or forwarded)
}

func (r *Resolver) serveUDPBatch(ctx context.Context) {
	slots := make([]udpSlot, udpBatch)
	for i := range slots {
		slots[i].in = make([]byte, udpBufSize+1)
		slots[i].out = make([]byte, udpBufSize+1)
	}
	uio := r.newUDPIO(slots)
	for {
		n, err := uio.read()
		if err != nil {
			if r.readFailed(ctx, err) {
				return
			}
			continue
		}
		for i := range n {
			sl := &slots[i]
			size := uio.size(i)
			if size > udpBufSize {
				continue // larger than any query we take: drop
			}
			peer := uio.peer(i)
			sl.mu.Lock()
			sl.query++
			sl.open, sl.answer = true, nil
			query := sl.query
			sl.mu.Unlock()
			r.handle(ctx, sl.in[:size], "udp", sl.out, func(b []byte) {
				sl.mu.Lock()
				if sl.open && sl.query == query { // answered locally, within handle
					sl.answer = b
					sl.mu.Unlock()
					return
				}
				sl.mu.Unlock()
				r.queueForwarded(b, peer) // forwarded, later
			})
			sl.mu.Lock()
			sl.open = false
			if sl.answer != nil {
				uio.reply(i, sl.answer)
			}
			sl.mu.Unlock()
		}
		uio.flush()
	}
}

// writeBatch sends the datagrams of ms, as few system calls as they take.
func (r *Resolver) writeBatch(ms []ipv4.Message) {
	for len(ms) > 0 {
		sent, err := r.batch.WriteBatch(ms, 0)
		if err != nil {
			if r.ctx.Err() == nil {
				r.srv.log.Debug("dns: udp write", "client", ms[0].Addr, "err", err)
			}
			sent = 1 // skip the answer that failed, send the rest
		}
		ms = ms[sent:]
	}
}

// forwardedAnswer is a forwarded query's answer and its client.
type forwardedAnswer struct {
	b  []byte
	to netip.AddrPort
}

// queueForwarded queues a forwarded answer for the flight's flush; nil
// is a drop.
func (r *Resolver) queueForwarded(b []byte, to netip.AddrPort) {
	if b == nil {
		return
	}
	r.outMu.Lock()
	r.out = append(r.out, forwardedAnswer{b: b, to: to})
	r.outMu.Unlock()
}

// flushForwarded sends the queued forwarded answers: those of one
// flight, and of any other that landed meanwhile.
func (r *Resolver) flushForwarded() {
	r.outMu.Lock()
	out := r.out
	r.out = nil
	r.outMu.Unlock()
	if len(out) > 0 {
		r.sendForwarded(out)
	}
}

// writeForwarded sends forwarded answers in x/net's batches.
func (r *Resolver) writeForwarded(out []forwardedAnswer) {
	ms := make([]ipv4.Message, len(out))
	for i, a := range out {
		ms[i] = ipv4.Message{Buffers: [][]byte{a.b}, Addr: net.UDPAddrFromAddrPort(a.to)}
	}
	r.writeBatch(ms)
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
	defer func() {        // unless the Resolver closes: its forwards are abandoned
		written := make(chan struct{})
		go func() { wg.Wait(); close(written) }()
		select {
		case <-written:
		case <-ctx.Done():
		}
	}()
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
