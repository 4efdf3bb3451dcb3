package lb

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
)

// Bucket chains keep the shared chains that grow with the number of
// services small. iptables-nft looks up the rule to delete with
// "-D CHAIN RULE" by fetching and comparing every rule of CHAIN, so
// removing a service from a MESH-PREROUTING of 2000 rules costs several
// times adding it. Once such a chain holds more than bucketThreshold
// entries, its entries go into bucketCount chains named CHAIN-0 … CHAIN-F,
// by a hash of the rule, and CHAIN holds one jump to each bucket that has
// entries. Below the threshold the chain holds its entries itself, as
// "iptables -nvL" readers expect; crossing it rewrites that one chain and
// its buckets in the same payload.
const bucketCount = 16

// bucketThreshold is the number of entries up to which a bucketed chain
// holds them itself. A variable so that tests can make small scenarios
// use buckets.
var bucketThreshold = 64

// bucketed are the shared chains that hold one or more entries per
// service or published port, and are therefore split into buckets when
// large.
var bucketed = map[chainKey]bool{
	{"mangle", chainMarkPre}: true, {"mangle", chainMarkIn}: true, {"mangle", chainMarkOut}: true,
	{"nat", chainServices}: true, {"filter", chainReject}: true,
	{"nat", chainIngress}: true,
}

// bucketOf names the bucket chain of parent that holds rule.
func bucketOf(parent chainKey, rule string) chainKey {
	h := fnv.New32a()
	_, _ = h.Write([]byte(rule))
	return chainKey{parent.table, fmt.Sprintf("%s-%X", parent.chain, h.Sum32()%bucketCount)}
}

// bucketParent returns the chain whose bucket k is, if k is a bucket.
func bucketParent(k chainKey) (chainKey, bool) {
	for i := len(k.chain) - 1; i > 0; i-- {
		if k.chain[i] != '-' {
			continue
		}
		p := chainKey{k.table, k.chain[:i]}
		n, err := strconv.ParseUint(k.chain[i+1:], 16, 8)
		if bucketed[p] && err == nil && n < bucketCount && k.chain == fmt.Sprintf("%s-%X", p.chain, n) {
			return p, true
		}
		return chainKey{}, false
	}
	return chainKey{}, false
}

// splits says whether shared chain k with n entries keeps them in buckets.
func splits(k chainKey, n int) bool { return bucketed[k] && n > bucketThreshold }

// place is the chain that holds rule, an entry of shared chain k, while
// k has n entries.
func place(k chainKey, rule string, n int) chainKey {
	if splits(k, n) {
		return bucketOf(k, rule)
	}
	return k
}

// layout places the entries of shared chains (chain → rules) in the
// chains that hold them: the chain itself, or its buckets and in it one
// jump to each (sorted).
func layout(entries map[chainKey][]string) map[chainKey][]string {
	out := make(map[chainKey][]string, len(entries))
	for k, rules := range entries {
		if !splits(k, len(rules)) {
			out[k] = append(out[k], rules...)
			continue
		}
		for _, r := range rules {
			b := bucketOf(k, r)
			out[b] = append(out[b], r)
		}
		var jumps []string
		for b := range bucketCount {
			c := chainKey{k.table, fmt.Sprintf("%s-%X", k.chain, b)}
			if len(out[c]) > 0 {
				jumps = append(jumps, "-j "+c.chain)
			}
		}
		out[k] = jumps
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
