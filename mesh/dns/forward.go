package dns

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// forwarder sends the queries the table cannot answer to the node's
// upstream servers. One forwarder serves every task; it holds no mutable
// state, so any number of goroutines may use it.
type forwarder struct {
	upstreams []netip.AddrPort // at most maxUpstreams, in order
	timeout   time.Duration    // per upstream
	exchange  ExchangeFunc
	log       *slog.Logger
}

// forward asks each upstream in turn, over proto, and returns the first
// real answer (NOERROR, NXDOMAIN, or any other rcode but SERVFAIL and
// REFUSED, which mean "try the next one", as in Swarm). A truncated
// answer is passed on: the client retries over TCP, and so do we. When
// no upstream answers, or ctx ends, the reply is SERVFAIL.
func (f *forwarder) forward(ctx context.Context, req *dns.Msg, proto string) *dns.Msg {
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
