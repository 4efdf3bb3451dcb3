package lb

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Bucket chains keep the shared chains that grow with the number of
// services small, and the walk of a new connection through them short.
// iptables-nft looks up the rule to delete with "-D CHAIN RULE" by
// fetching and comparing every rule of CHAIN, so removing a service from
// a MESH-PREROUTING of 2000 rules costs several times adding it; and
// every rule of a chain a packet enters is a match to evaluate. Once such
// a chain holds more than bucketThreshold entries, its entries move out
// of it, by what they match (splitKind):
//
//   - the mark chains (mangle MESH-PREROUTING, MESH-INPUT, MESH-OUTPUT)
//     into ipsets with skbinfo, MESH-PREROUTING-VIP (hash:ip) and
//     MESH-PREROUTING-TCP and -UDP (bitmap:port), one member per entry
//     holding the mark; the chain holds one "-j SET --map-set NAME dst
//     --map-mark" per set: a hash or bitmap lookup sets the mark;
//   - the chains that match marks (nat MESH-SERVICES, filter MESH-REJECT)
//     into bucket chains CHAIN-0 … CHAIN-F by the mark's low four bits,
//     entered by "-m mark --mark 0x3/0xf -j CHAIN-3": sixteen matches and
//     a sixteenth of the entries;
//   - the host's nat MESH-INGRESS, one DNAT per published port, into
//     bucket chains by a hash of the rule (a port has no bits a match can
//     pick cheaply), all of them walked.
//
// A bucket (chain or set) exists while it has entries, and the parent's
// rule that enters it (bucketRef) with it. Below the threshold the chain
// holds its entries itself, as "iptables -nvL" readers expect; crossing
// it rewrites that one chain and its buckets in the same payload.
//
// Sets appear in payloads and saved text as the pseudo-table "*ipset", a
// chain per set and a rule per member (sets.go); IPTables applies them
// over netlink.
const bucketCount = 16

// bucketThreshold is the number of entries up to which a bucketed chain
// holds them itself. A variable so that tests can make small scenarios
// use buckets.
var bucketThreshold = 64

// splitKind is how a bucketed chain's entries are split.
type splitKind int

const (
	splitHash splitKind = iota + 1 // bucket chains by a hash of the rule
	splitMark                      // bucket chains by the mark's low four bits
	splitSets                      // ipsets keyed by address or port
)

// bucketed are the shared chains that hold one or more entries per
// service or published port, and how each is split when large.
var bucketed = map[chainKey]splitKind{
	{"mangle", chainMarkPre}: splitSets, {"mangle", chainMarkIn}: splitSets, {"mangle", chainMarkOut}: splitSets,
	{"nat", chainServices}: splitMark, {"filter", chainReject}: splitMark,
	{"nat", chainIngress}: splitHash,
}

// bucketOf is where an entry of parent goes when parent is split, and
// what it reads there: a bucket chain and the rule itself, or a set and
// the member. A rule the split cannot key stays in parent (the renderers
// write none: TestEveryEntryHasABucket).
func bucketOf(parent chainKey, rule string) (chainKey, string) {
	switch bucketed[parent] {
	case splitSets:
		if set, member, ok := markMember(parent.chain, rule); ok {
			return chainKey{setTable, set}, member
		}
		return parent, rule
	case splitMark:
		m := markRE.FindStringSubmatch(rule)
		if m == nil {
			return parent, rule
		}
		v, err := strconv.ParseUint(m[1], 0, 32)
		if err != nil {
			return parent, rule
		}
		return chainKey{parent.table, fmt.Sprintf("%s-%X", parent.chain, v%bucketCount)}, rule
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(rule))
	return chainKey{parent.table, fmt.Sprintf("%s-%X", parent.chain, h.Sum32()%bucketCount)}, rule
}

// markRE finds the mark an entry of MESH-SERVICES or MESH-REJECT matches.
var markRE = regexp.MustCompile(`(?:^| )-m mark --mark (0x[0-9a-f]+) `)

// bucketsOf are every bucket parent may have, in the order their
// references are written in it.
func bucketsOf(parent chainKey) []chainKey {
	if bucketed[parent] == splitSets {
		var out []chainKey
		for _, s := range setKinds {
			out = append(out, chainKey{setTable, parent.chain + s.suffix})
		}
		return out
	}
	out := make([]chainKey, bucketCount)
	for b := range bucketCount {
		out[b] = chainKey{parent.table, fmt.Sprintf("%s-%X", parent.chain, b)}
	}
	return out
}

// bucketRef is the rule of k's parent that sends packets to bucket k.
func bucketRef(parent, k chainKey) string {
	switch bucketed[parent] {
	case splitSets:
		return setKindOf(k.chain).ref(k.chain)
	case splitMark:
		n, _ := strconv.ParseUint(k.chain[len(parent.chain)+1:], 16, 8)
		return fmt.Sprintf("-m mark --mark %#x/%#x -j %s", n, bucketCount-1, k.chain)
	}
	return "-j " + k.chain
}

// bucketParent returns the chain whose bucket k is, if k is a bucket.
func bucketParent(k chainKey) (chainKey, bool) {
	if k.table == setTable {
		for _, s := range setKinds {
			p := chainKey{"mangle", strings.TrimSuffix(k.chain, s.suffix)}
			if strings.HasSuffix(k.chain, s.suffix) && bucketed[p] == splitSets {
				return p, true
			}
		}
		return chainKey{}, false
	}
	for i := len(k.chain) - 1; i > 0; i-- {
		if k.chain[i] != '-' {
			continue
		}
		p := chainKey{k.table, k.chain[:i]}
		n, err := strconv.ParseUint(k.chain[i+1:], 16, 8)
		kind := bucketed[p]
		if (kind == splitHash || kind == splitMark) && err == nil && n < bucketCount && k.chain == fmt.Sprintf("%s-%X", p.chain, n) {
			return p, true
		}
		return chainKey{}, false
	}
	return chainKey{}, false
}

// splits says whether shared chain k with n entries keeps them in buckets.
func splits(k chainKey, n int) bool { return bucketed[k] != 0 && n > bucketThreshold }

// place is where rule, an entry of shared chain k, goes while k has n
// entries, and what it reads there.
func place(k chainKey, rule string, n int) (chainKey, string) {
	if splits(k, n) {
		return bucketOf(k, rule)
	}
	return k, rule
}

// layout places the entries of shared chains (chain → rules) in the
// chains and sets that hold them: the chain itself, or its buckets and in
// it the reference to each bucket in use (in bucketsOf's order), then any
// entry the split could not key.
func layout(entries map[chainKey][]string) map[chainKey][]string {
	out := make(map[chainKey][]string, len(entries))
	for k, rules := range entries {
		if !splits(k, len(rules)) {
			out[k] = append(out[k], rules...)
			continue
		}
		var kept []string
		for _, r := range rules {
			b, text := bucketOf(k, r)
			if b == k {
				kept = append(kept, r)
				continue
			}
			out[b] = append(out[b], text)
		}
		var refs []string
		for _, b := range bucketsOf(k) {
			if len(out[b]) > 0 {
				refs = append(refs, bucketRef(k, b))
			}
		}
		out[k] = append(refs, kept...)
	}
	return out
}

// sharedEntries are the entries of every shared chain of r, by chain.
func (r ruleset) sharedEntries() map[chainKey][]string {
	out := map[chainKey][]string{}
	for _, u := range r {
		for _, e := range u.entries {
			out[e.key()] = append(out[e.key()], e.rule)
		}
	}
	return out
}

// entriesOf are the rules of r's entries in shared chain k.
func (r ruleset) entriesOf(k chainKey) []string {
	var out []string
	for _, u := range r {
		for _, e := range u.entries {
			if e.key() == k {
				out = append(out, e.rule)
			}
		}
	}
	slices.Sort(out)
	return out
}

// totals are the entries of each shared chain, from the counts of the
// chains that hold them.
func (c counts) totals() map[chainKey]int {
	out, split := map[chainKey]int{}, map[chainKey]bool{}
	for k, n := range c {
		if p, ok := bucketParent(k); ok {
			out[p] += n
			split[p] = true
		}
	}
	for k, n := range c {
		if _, ok := bucketParent(k); !ok && !split[k] {
			out[k] = n
		}
	}
	return out
}
