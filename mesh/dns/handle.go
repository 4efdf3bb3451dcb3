package dns

import (
	"context"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// overloadLogEvery spaces the warnings about refused queries.
const overloadLogEvery = 10 * time.Second

// handle answers one raw query that came over proto ("udp" or "tcp").
// It calls done exactly once: with the packed answer, or with nil when
// the query is dropped (not a DNS header, or a response). Local answers
// are done before handle returns, packed into out when it is big enough;
// forwarded ones from the goroutine of their flight, later. raw is not
// kept after handle returns.
//
// What gets which answer:
//   - undecodable with a header: FORMERR, so the client stops waiting;
//   - opcode other than QUERY: NOTIMP; not exactly one question: FORMERR;
//   - a name or address of the table for this task: the local answer;
//   - anything else: the upstreams' answer, REFUSED past MaxInFlight.
func (r *Resolver) handle(ctx context.Context, raw []byte, proto string, out []byte, done func([]byte)) {
	if r.srv.observe != nil {
		done = observed(r.srv.observe, done)
	}
	answered := false
	reply := func(b []byte) { answered = true; done(b) }
	defer func() {
		if p := recover(); p != nil { // a bug must not take the node agent down
			r.srv.log.Error("dns: panic answering a query", "panic", p, "stack", string(debug.Stack()))
			if !answered {
				done(nil)
			}
		}
	}()
	if b, ok := r.fastAnswer(raw, proto, out); ok {
		reply(b)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		reply(formErr(raw))
		return
	}
	switch {
	case req.Response:
		reply(nil)
		return
	case req.Opcode != dns.OpcodeQuery:
		reply(r.pack(newReply(req, dns.RcodeNotImplemented), req, proto, out))
		return
	case len(req.Question) != 1:
		reply(r.pack(newReply(req, dns.RcodeFormatError), req, proto, out))
		return
	}
	if resp := r.srv.table.Load().answer(r.querier.Load(), req, r.srv.ttl); resp != nil {
		reply(r.pack(resp, req, proto, out))
		return
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.warnOverload()
		reply(r.pack(newReply(req, dns.RcodeRefused), req, proto, out))
		return
	}
	answered = true // from here on the flight answers
	r.srv.fwd.forward(req, proto, r.waiter(ctx, req, proto, done))
}

// observed wraps done so that obs is told of each answer sent: its rcode,
// read from the packed header (the low four bits; an extended rcode in an
// OPT record is not looked at), and the time since the query was read.
func observed(obs ObserveFunc, done func([]byte)) func([]byte) {
	start := time.Now()
	return func(b []byte) {
		if len(b) >= 4 {
			obs(rcodeName(int(b[3]&0x0f)), time.Since(start))
		}
		done(b)
	}
}

// rcodeName is rcode as dig prints it; the 16 header rcodes bound the names.
func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// waiter is req's place in a flight: its answer is the flight's, under
// req's ID and question, packed for its client and handed to done; then
// its in-flight slot is released. A TCP answer is written from a
// goroutine of its own, as a client that stopped reading would otherwise
// hold the flight's other answers for the write deadline.
func (r *Resolver) waiter(ctx context.Context, req *dns.Msg, proto string, done func([]byte)) waiter {
	return waiter{flush: r, answer: func(resp *dns.Msg) {
		answered := false
		defer func() {
			<-r.sem
			if p := recover(); p != nil {
				r.srv.log.Error("dns: panic answering a forwarded query", "panic", p, "stack", string(debug.Stack()))
				if !answered {
					done(nil)
				}
			}
		}()
		var b []byte
		if ctx.Err() == nil { // closed meanwhile: the client gets nothing
			m := resp.Copy()
			m.Id, m.Question = req.Id, req.Question // the client's own, case and all
			b = r.pack(m, req, proto, nil)
		}
		answered = true
		if proto == "tcp" {
			r.srv.fwd.wg.Go(func() { done(b) })
			return
		}
		done(b)
	}}
}

// pack packs resp for req's client, or returns nil (a drop) if it cannot
// be packed, which only a broken upstream answer could cause.
func (r *Resolver) pack(resp, req *dns.Msg, proto string, out []byte) []byte {
	b, err := packFor(resp, req, proto, out)
	if err != nil {
		r.srv.log.Debug("dns: pack answer", "id", req.Id, "err", err)
		return nil
	}
	return b
}

// warnOverload logs, at most every overloadLogEvery, that forwarded
// queries are being refused.
func (r *Resolver) warnOverload() {
	now := time.Now().UnixNano()
	last := r.srv.lastOverloadLog.Load()
	if now-last < int64(overloadLogEvery) || !r.srv.lastOverloadLog.CompareAndSwap(last, now) {
		return
	}
	r.srv.log.Warn("dns: too many forwarded queries in flight, refusing", "max", r.srv.maxInFlight)
}

// formErr is the FORMERR answer to an undecodable query: its ID and
// opcode, no question. It is nil, a drop, without a full header or for a
// response (never answer answers: that is how loops start).
func formErr(raw []byte) []byte {
	const hdr = 12
	if len(raw) < hdr || raw[2]&0x80 != 0 {
		return nil
	}
	b := make([]byte, hdr)
	copy(b, raw[:2])
	b[2] = 0x80 | raw[2]&0x79 // QR; opcode and RD kept
	b[3] = dns.RcodeFormatError
	return b
}
