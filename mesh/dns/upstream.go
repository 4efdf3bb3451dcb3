package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const (
	// socketsPerUpstream is how many UDP sockets to one upstream are open
	// at once, each on its own random port, as dnsmasq keeps a set of
	// random-port sockets rather than one per query.
	socketsPerUpstream = 8
	// queriesPerSocket is how many queries a socket sends before it is
	// retired and a new one, on a new random port, takes its place: under
	// load the ports keep changing, and a socket's cost (socket, connect,
	// the poller's registration, close) is paid once per this many.
	queriesPerSocket = 128
	// sendAttempts is how many sockets a query tries before its send
	// fails.
	sendAttempts = 3
	// maxUDPReply is the largest UDP datagram, so that no EDNS size asked
	// by a client can truncate the read.
	maxUDPReply = 65535
)

// readBufs are the sockets' read buffers: a socket lives for
// queriesPerSocket queries, and its reader's buffer goes on to the next.
var readBufs = sync.Pool{New: func() any { b := make([]byte, maxUDPReply); return &b }}

// errClosedExchanger is the error of an exchange after Server.Close.
var errClosedExchanger = errors.New("dns: forwarder closed")

// exchanger is the default ExchangeFunc's state. UDP queries, nearly
// every forward, share a few long-lived connected sockets per upstream,
// each read by one goroutine that hands every reply to the query waiting
// under its ID on that socket; TCP queries dial a connection each.
//
// A connected socket takes datagrams from the upstream's address and
// port alone, as a socket per query would. The ID on the wire
// is drawn afresh for each query among those free on the socket, and the
// reply is checked against the question by the forwarder (try), so an
// off-path answer must guess the port among a few random ones, the ID
// and the name.
//
// Sockets are opened by the goroutine that needs one, so in its
// thread's network namespace: the node's (see doc.go).
type exchanger struct {
	mu     sync.Mutex // guards the fields below
	live   map[netip.AddrPort][]*upstreamConn
	closed bool
	all    map[*upstreamConn]struct{} // live and retired, until closed
}

func newExchanger() *exchanger {
	return &exchanger{live: map[netip.AddrPort][]*upstreamConn{}, all: map[*upstreamConn]struct{}{}}
}

// upstreamConn is one connected UDP socket to one upstream and the
// queries waiting for an answer on it.
type upstreamConn struct {
	ex *exchanger
	up netip.AddrPort
	c  *net.UDPConn
	rc syscall.RawConn // c's, for write and recv

	mu      sync.Mutex // guards the fields below
	pending map[uint16]chan<- []byte
	uses    int  // queries given the socket, ever
	holders int  // queries given the socket and not yet done with it
	retired bool // takes no new query; closed once holders is 0
	err     error
}

// Exchange is an [ExchangeFunc].
func (e *exchanger) Exchange(ctx context.Context, m *dns.Msg, upstream netip.AddrPort, proto string) (*dns.Msg, error) {
	if proto != "udp" {
		return dialExchange(ctx, m, upstream, proto)
	}
	buf, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	uc, id, ch, err := e.send(upstream, buf)
	if err != nil {
		return nil, err
	}
	defer uc.release(id, ch)
	select {
	case raw, ok := <-ch:
		if !ok {
			uc.mu.Lock()
			err := uc.err
			uc.mu.Unlock()
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			return nil, fmt.Errorf("unpack reply from %s: %w", upstream, err)
		}
		r.Id = m.Id
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send writes the packed query buf to upstream under an ID free on the
// socket it picks, and returns where the reply will come. A socket whose
// write fails is retired and the query goes out on another, on a new
// port: the node's own netfilter may drop a packet it sends (EPERM). In
// make bench-dns that came 1 to 5 times a run, each time with one more
// insert_failed in the node's conntrack statistics, and it failed a
// whole flight of waiting clients at once. It comes where other flows
// crowd the node's ports toward the upstream: after a few 3 s runs of
// dnsmasq in a task forwarding through the node's masquerade, 39,750 of
// the 64,512 ports above 1023 were held, and conntrack gave 6,976 of
// meshd's next 7,666 flows another source port (in a build that opened
// a socket every 4 queries, to have many flows). dnsmasq's own forwards
// met the same drops, and sending a socket's first datagram before any
// other did not avoid them.
func (e *exchanger) send(upstream netip.AddrPort, buf []byte) (*upstreamConn, uint16, chan []byte, error) {
	err := fmt.Errorf("send to %s: sockets keep failing", upstream)
	for range sendAttempts {
		uc, perr := e.pick(upstream)
		if perr != nil {
			return nil, 0, nil, perr
		}
		ch := make(chan []byte, 1)
		uc.mu.Lock()
		if uc.err != nil { // failed between pick and register
			uc.mu.Unlock()
			uc.release(0, nil)
			continue
		}
		id := uint16(rand.Uint32())
		for uc.pending[id] != nil {
			id = uint16(rand.Uint32())
		}
		uc.pending[id] = ch
		uc.mu.Unlock()
		binary.BigEndian.PutUint16(buf, id)
		if werr := uc.write(buf); werr != nil {
			err = fmt.Errorf("send to %s: %w", upstream, werr)
			uc.retire()
			uc.release(id, ch)
			continue
		}
		return uc, id, ch, nil
	}
	return nil, 0, nil, err
}

// pick returns a socket to upstream for one more query: a new one while
// fewer than socketsPerUpstream are open, else a random open one. The
// query that uses a socket up retires it.
func (e *exchanger) pick(upstream netip.AddrPort) (*upstreamConn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosedExchanger
	}
	live := e.live[upstream]
	var uc *upstreamConn
	if len(live) < socketsPerUpstream {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(upstream))
		if err != nil {
			return nil, err
		}
		rc, err := c.SyscallConn()
		if err != nil {
			c.Close()
			return nil, err
		}
		uc = &upstreamConn{ex: e, up: upstream, c: c, rc: rc, pending: map[uint16]chan<- []byte{}}
		e.all[uc] = struct{}{}
		live = append(live, uc)
		go uc.read()
	} else {
		uc = live[rand.IntN(len(live))]
	}
	uc.mu.Lock()
	uc.uses++
	uc.holders++
	if uc.uses >= queriesPerSocket {
		uc.retired = true
		live = slices.DeleteFunc(live, uc.is)
	}
	uc.mu.Unlock()
	e.live[upstream] = live
	return uc, nil
}

func (uc *upstreamConn) is(c *upstreamConn) bool { return c == uc }

// release ends a query's hold on the socket (its wait on ch under id, if
// it got that far: once its reply came, the ID may be another query's),
// and closes a retired socket nobody holds any more.
func (uc *upstreamConn) release(id uint16, ch chan []byte) {
	uc.mu.Lock()
	if ch != nil && uc.pending[id] == ch {
		delete(uc.pending, id)
	}
	uc.holders--
	done := uc.retired && uc.holders == 0
	uc.mu.Unlock()
	if done {
		uc.c.Close() // its reader then drops it
	}
}

// read hands each reply to the query waiting under its ID, once; a reply
// nobody waits for (late, repeated, or forged) is dropped. A read error
// fails every query waiting on the socket: an ICMP port unreachable from
// the upstream comes as ECONNREFUSED, and the queries then move on to the
// next upstream at once rather than at their timeout. The socket then
// takes no more queries.
func (uc *upstreamConn) read() {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		n, err := uc.recv(buf)
		if err != nil {
			uc.fail(err)
			return
		}
		if n < 12 { // shorter than a header
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		uc.mu.Lock()
		ch := uc.pending[id]
		delete(uc.pending, id)
		uc.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), buf[:n]...) // buffered: never blocks
		}
	}
}

// retire takes the socket out of the live ones: it takes no new query,
// and the last of its queries to finish closes it (release).
func (uc *upstreamConn) retire() {
	e := uc.ex
	e.mu.Lock()
	e.live[uc.up] = slices.DeleteFunc(e.live[uc.up], uc.is)
	e.mu.Unlock()
	uc.mu.Lock()
	uc.retired = true
	uc.mu.Unlock()
}

// fail ends the socket after a read error.
func (uc *upstreamConn) fail(err error) {
	uc.retire()
	e := uc.ex
	e.mu.Lock()
	delete(e.all, uc)
	e.mu.Unlock()
	uc.mu.Lock()
	uc.err = fmt.Errorf("read from upstream: %w", err)
	for id, ch := range uc.pending {
		close(ch)
		delete(uc.pending, id)
	}
	uc.mu.Unlock()
	uc.c.Close()
}

// Close closes every socket; their queries fail at once.
func (e *exchanger) Close() {
	e.mu.Lock()
	e.closed = true
	all := slices.Collect(maps.Keys(e.all))
	e.mu.Unlock()
	for _, uc := range all {
		uc.c.Close()
	}
}

// dialExchange sends one query on a connection of its own, closed when
// ctx ends: the exchanger's way for TCP. miekg/dns's Client does the
// exchange (skipping replies under another ID, sizing the read by the
// query's EDNS).
func dialExchange(ctx context.Context, m *dns.Msg, upstream netip.AddrPort, proto string) (*dns.Msg, error) {
	c := &dns.Client{Net: proto, Dialer: &net.Dialer{}}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl) // the Client's own 2 s read timeout would cut first
	}
	co, err := c.DialContext(ctx, upstream.String())
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	return r, err
}
