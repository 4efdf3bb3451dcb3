package dns

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// The fast path answers the query every task sends most, an A or AAAA
// question for a name of the table, straight from and into wire bytes:
// no message is unpacked, no record allocated, nothing compressed but
// the answers' owner names, which point at the question (0xC00C). It
// exists to keep up with dnsmasq (see BenchmarkResolver); the general
// path (miekg/dns) answers everything else, and FuzzFastPath checks the
// two agree wherever the fast path answers.

// Wire constants of RFC 1035 and RFC 6891.
const (
	hdrLen     = 12
	typeA      = 1
	typeAAAA   = 28
	typeOPT    = 41
	classIN    = 1
	ptrToQName = 0xC000 | hdrLen // compression pointer to the question name
	optRRLen   = 11              // root name, type, class, TTL, rdlength 0
)

// fastQuery is what the fast path reads out of a query.
type fastQuery struct {
	qEnd  int    // end of the question section
	name  string // lowercased, dotted, no trailing dot
	qtype uint16
	edns  bool // the query has an OPT record (version 0)
	size  int  // largest UDP answer the client takes
}

// parseFast reads a query the fast path can answer: a standard query of
// one IN question for A or AAAA, a name of plain labels (no compression,
// no '.' or '\' bytes, which miekg/dns would escape), and nothing after
// it but one version-0 OPT record. ok is false for anything else.
func parseFast(raw []byte) (q fastQuery, ok bool) {
	if len(raw) < hdrLen || raw[2]&0xFA != 0 { // QR, opcode, TC: all zero
		return q, false
	}
	qd, an, ns, ar := u16(raw[4:]), u16(raw[6:]), u16(raw[8:]), u16(raw[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, false
	}
	var name [253]byte
	n, off := 0, hdrLen
	for {
		if off >= len(raw) {
			return q, false
		}
		l := int(raw[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(raw) || n+l+1 > len(name) {
			return q, false
		}
		if n > 0 {
			name[n] = '.'
			n++
		}
		for _, c := range raw[off : off+l] {
			if c == '.' || c == '\\' || c < '!' || c > '~' {
				return q, false
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name[n] = c
			n++
		}
		off += l
	}
	if off+4 > len(raw) || u16(raw[off+2:]) != classIN {
		return q, false
	}
	q = fastQuery{qEnd: off + 4, name: string(name[:n]), qtype: u16(raw[off:]), size: 512}
	if q.qtype != typeA && q.qtype != typeAAAA {
		return q, false
	}
	return q, parseOPT(raw, &q)
}

// parseOPT reads the one OPT record a fast query may have, which must end
// the packet: root name, type OPT, version 0, any options.
func parseOPT(raw []byte, q *fastQuery) bool {
	rest := raw[q.qEnd:]
	if u16(raw[10:]) == 0 {
		return len(rest) == 0
	}
	if len(rest) < optRRLen || rest[0] != 0 || u16(rest[1:]) != typeOPT || rest[6] != 0 {
		return false
	}
	if int(u16(rest[9:])) != len(rest)-optRRLen {
		return false
	}
	q.edns = true
	q.size = max(512, int(u16(rest[3:])))
	return true
}

// fastAnswer answers raw from the table if the fast path can, appending
// to out[:0]; ok is false when the general path must take the query. The
// answer is the one newReply and packFor would give, records shuffled
// the same way.
func (r *Resolver) fastAnswer(raw []byte, proto string, out []byte) (_ []byte, ok bool) {
	q, ok := parseFast(raw)
	if !ok {
		return nil, false
	}
	addrs, found := r.srv.table.Load().lookup(r.querier.Load(), q.name)
	if !found {
		return nil, false
	}
	limit := 65535
	if proto == "udp" {
		limit = q.size
	}
	b := append(out[:0], raw[:2]...)                  // ID
	b = append(b, 0x80|raw[2]&0x01, 0x80|raw[3]&0x10) // QR RD, RA CD, NOERROR
	b = append(b, 0, 1, 0, 0, 0, 0, 0, 0)             // counts, set below
	b = append(b, raw[hdrLen:q.qEnd]...)              // the question as asked
	rrLen := 16
	if q.qtype == typeAAAA {
		rrLen = 28
	}
	start := len(b)
	for _, a := range addrs {
		if a = a.Unmap(); (q.qtype == typeA) != a.Is4() {
			continue
		}
		b = appendRR(b, q.qtype, r.srv.ttl, a)
	}
	count := (len(b) - start) / rrLen
	shuffleRRs(b[start:], count, rrLen)
	room := limit - start
	if q.edns {
		room -= optRRLen
	}
	if fit := max(room, 0) / rrLen; fit < count {
		b, count = b[:start+fit*rrLen], fit
		b[2] |= 0x02 // TC
	}
	binary.BigEndian.PutUint16(b[6:], uint16(count))
	if q.edns {
		b = append(b, 0, 0, typeOPT, ednsSize>>8, ednsSize&0xff, 0, 0, 0, 0, 0, 0)
		b[11] = 1 // ARCOUNT
	}
	return b, true
}

func u16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// appendRR appends one A or AAAA record owned by the question name.
func appendRR(b []byte, qtype uint16, ttl uint32, a netip.Addr) []byte {
	b = binary.BigEndian.AppendUint16(b, ptrToQName)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, ttl)
	if a.Is4() {
		v := a.As4()
		return append(binary.BigEndian.AppendUint16(b, 4), v[:]...)
	}
	v := a.As16()
	return append(binary.BigEndian.AppendUint16(b, 16), v[:]...)
}

// shuffleRRs puts the count records of rrLen bytes in rrs in a uniformly
// random order (Fisher-Yates, swapping whole records).
func shuffleRRs(rrs []byte, count, rrLen int) {
	var tmp [28]byte
	for i := count - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		if i == j {
			continue
		}
		a, b := rrs[i*rrLen:(i+1)*rrLen], rrs[j*rrLen:(j+1)*rrLen]
		copy(tmp[:], a)
		copy(a, b)
		copy(b, tmp[:rrLen])
	}
}
