package dns

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size this server advertises in the OPT
// record of its answers. It matches the read buffer of the UDP loop.
const ednsSize = 4096

// answer builds the local answer to req, which has exactly one question,
// or returns nil when the name is not in the table for q and the query
// must be forwarded. Only class IN is answered locally.
//
// A name that exists answers every type: A and AAAA with the addresses of
// that family (shuffled when there are several, like Swarm, so that
// clients taking the first spread over them), anything else with an empty
// NOERROR, so that no query for a task name leaks upstream.
func (t *Table) answer(q *Querier, req *dns.Msg, ttl uint32) *dns.Msg {
	qs := req.Question[0]
	if qs.Qclass != dns.ClassINET {
		return nil
	}
	if qs.Qtype == dns.TypePTR {
		return t.answerPTR(q, req, ttl)
	}
	addrs, found := t.lookup(q, qs.Name)
	if !found {
		return nil
	}
	resp := newReply(req, dns.RcodeSuccess)
	if qs.Qtype != dns.TypeA && qs.Qtype != dns.TypeAAAA {
		return resp
	}
	hdr := dns.RR_Header{Name: qs.Name, Rrtype: qs.Qtype, Class: dns.ClassINET, Ttl: ttl}
	resp.Answer = make([]dns.RR, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case qs.Qtype == dns.TypeA && a.Is4():
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case qs.Qtype == dns.TypeAAAA && a.Is6():
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	if len(resp.Answer) > 1 {
		rand.Shuffle(len(resp.Answer), func(i, j int) {
			resp.Answer[i], resp.Answer[j] = resp.Answer[j], resp.Answer[i]
		})
	}
	return resp
}

// answerPTR answers a reverse lookup of an address in the table, or
// returns nil for any other PTR query (partial zones, unknown addresses),
// which is then forwarded as Swarm does.
func (t *Table) answerPTR(q *Querier, req *dns.Msg, ttl uint32) *dns.Msg {
	qs := req.Question[0]
	a, ok := parseReverse(qs.Name)
	if !ok {
		return nil
	}
	name, ok := t.reverse(q, a)
	if !ok {
		return nil
	}
	resp := newReply(req, dns.RcodeSuccess)
	resp.Answer = []dns.RR{&dns.PTR{
		Hdr: dns.RR_Header{Name: qs.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl},
		Ptr: dns.Fqdn(name),
	}}
	return resp
}

// newReply is the reply to req with rcode: the question echoed, RD and CD
// copied, RA set (the server recurses through its upstreams), and an OPT
// record when req had one (RFC 6891 6.1.1).
func newReply(req *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = true
	if req.IsEdns0() != nil {
		resp.SetEdns0(ednsSize, false)
	}
	return resp
}

// maxSize is the largest answer the client of req takes over proto: over
// UDP 512 bytes, or the size its OPT record advertises; over TCP 65535.
func maxSize(req *dns.Msg, proto string) int {
	if proto != "udp" {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// packFor packs resp for the client of req over proto. An answer too big
// for the client keeps the records that fit and gets TC set, so a client
// retries over TCP, while one that ignores TC (old musl) still gets
// usable addresses.
func packFor(resp, req *dns.Msg, proto string, buf []byte) ([]byte, error) {
	resp.Truncate(maxSize(req, proto))
	return resp.PackBuffer(buf)
}

// parseReverse reads the address out of a full reverse name:
// 4.3.2.1.in-addr.arpa or the 32 nibbles of an ip6.arpa name.
func parseReverse(name string) (netip.Addr, bool) {
	name = canonical(name)
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			b[15-i/2] |= byte(v) << (4 * (i % 2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
