package dns

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// forwarder sends the queries the table cannot answer to the node's
// upstream servers. One forwarder serves every task, and any number of
// goroutines may use it.
//
// Identical questions in flight at once share one exchange, as dnsmasq
// does: when a hundred tasks start together and look up the same
// database host, the upstream is asked once, and the node opens one
// socket rather than a hundred. Each client still gets its own ID and its
// own question back. Nothing is cached: a question asked after the
// answer came is sent again.
type forwarder struct {
	upstreams []netip.AddrPort // at most maxUpstreams, in order
	timeout   time.Duration    // per upstream
	exchange  ExchangeFunc
	log       *slog.Logger

	ctx     context.Context // ends at Server.Close: stops every flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every flight, and the answers it writes
	mu      sync.Mutex     // guards flights
	flights map[flightKey]*flight
}

func newForwarder(upstreams []netip.AddrPort, timeout time.Duration, exchange ExchangeFunc, log *slog.Logger) *forwarder {
	f := &forwarder{upstreams: upstreams, timeout: timeout, exchange: exchange, log: log, flights: map[flightKey]*flight{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

// flightKey is what makes two queries the same question to an upstream:
// the transport (UDP may come back truncated), the question, the flags
// a server reads (RD, CD) and the EDNS record as sent (size, DO bit,
// options).
type flightKey struct {
	proto, name   string
	qtype, qclass uint16
	rd, cd        bool
	opt           string
}

// flight is one exchange that several clients wait for.
type flight struct {
	waiters []waiter // guarded by forwarder.mu; nil once the flight landed
}

// waiter is a query waiting for a flight. The flight's goroutine calls
// answer for each of its waiters, then flushForwarded once on each
// distinct flusher they name: a task's answers to one flight leave in
// one system call (see Resolver.flushForwarded) rather than one each.
type waiter struct {
	answer func(resp *dns.Msg) // resp is the flight's: not to be changed
	flush  flusher
}

// flusher sends the answers its waiters' answer calls queued.
type flusher interface{ flushForwarded() }

// keyOf returns req's flightKey; ok is false for a query that carries
// more than a question and an OPT record, which is sent on its own.
func keyOf(req *dns.Msg, proto string) (k flightKey, ok bool) {
	if len(req.Question) != 1 || len(req.Answer) > 0 || len(req.Ns) > 0 {
		return k, false
	}
	opt := req.IsEdns0()
	if len(req.Extra) > 1 || (len(req.Extra) == 1 && opt == nil) {
		return k, false
	}
	q := req.Question[0]
	k = flightKey{proto: proto, name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass,
		rd: req.RecursionDesired, cd: req.CheckingDisabled}
	if opt != nil {
		k.opt = opt.String()
	}
	return k, true
}

// forward asks the upstreams for req (see ask), joining the flight of an
// identical question if one is in the air, and hands w the answer from
// the flight's goroutine. A waiter costs no goroutine of its own: under a
// burst of one unknown name, the queries wait as entries of one list.
// req is not kept once forward returns.
func (f *forwarder) forward(req *dns.Msg, proto string, w waiter) {
	key, ok := keyOf(req, proto)
	f.mu.Lock()
	if fl := f.flights[key]; ok && fl != nil {
		fl.waiters = append(fl.waiters, w)
		f.mu.Unlock()
		return
	}
	fl := &flight{waiters: []waiter{w}}
	if ok {
		f.flights[key] = fl
	}
	f.mu.Unlock()
	q := req.Copy()
	f.wg.Go(func() { f.fly(key, ok, fl, q, proto) })
}

// fly runs one flight to its end, bounded by the upstreams' timeouts and
// the server's life, and answers its waiters: those that joined before
// it landed, shared is whether others could join (it is in flights).
func (f *forwarder) fly(key flightKey, shared bool, fl *flight, req *dns.Msg, proto string) {
	resp := f.ask(f.ctx, req, proto)
	f.mu.Lock()
	if shared {
		delete(f.flights, key)
	}
	ws := fl.waiters
	fl.waiters = nil
	f.mu.Unlock()
	var flushes []flusher
	for _, w := range ws {
		w.answer(resp)
		if !slices.Contains(flushes, w.flush) {
			flushes = append(flushes, w.flush)
		}
	}
	for _, to := range flushes {
		to.flushForwarded()
	}
}

// ask asks each upstream in turn, over proto, and returns the first
// real answer (NOERROR, NXDOMAIN, or any other rcode but SERVFAIL and
// REFUSED, which mean "try the next one", as in Swarm). A truncated
// answer is passed on: the client retries over TCP, and so do we. When
// no upstream answers, or ctx ends, the reply is SERVFAIL.
func (f *forwarder) ask(ctx context.Context, req *dns.Msg, proto string) *dns.Msg {
	q := req.Copy()
	q.Id = uint16(rand.Uint32()) // the client's ID is guessable; ours is not
	for _, up := range f.upstreams {
		if ctx.Err() != nil {
			break
		}
		resp, err := f.try(ctx, q, up, proto)
		if err != nil {
			f.log.Debug("dns: upstream failed", "upstream", up, "proto", proto,
				"name", req.Question[0].Name, "err", err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			f.log.Debug("dns: upstream refused", "upstream", up, "proto", proto,
				"name", req.Question[0].Name, "rcode", dns.RcodeToString[resp.Rcode])
			continue
		}
		resp.Id = req.Id
		return resp
	}
	return newReply(req, dns.RcodeServerFailure)
}

// try is one exchange with one upstream, bounded by the timeout. A reply
// must answer our question under our ID; anything else is a failure.
func (f *forwarder) try(ctx context.Context, q *dns.Msg, up netip.AddrPort, proto string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := f.exchange(ctx, q, up, proto)
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Id != q.Id || !sameQuestion(resp, q) {
		return nil, errMismatch
	}
	return resp, nil
}

// sameQuestion reports whether resp answers q's question (names compared
// case-insensitively, as 0x20-randomising upstreams may change case).
func sameQuestion(resp, q *dns.Msg) bool {
	if len(resp.Question) == 0 {
		return resp.Rcode != dns.RcodeSuccess // errors may omit the question
	}
	a, b := resp.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && canonical(a.Name) == canonical(b.Name)
}

// errMismatch is a reply for another query.
var errMismatch = errors.New("dns: upstream reply does not match the query")
