package lb

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// chainKey names a chain in a table.
type chainKey struct{ table, chain string }

// jump is a rule in a built-in chain that enters one of our chains.
type jump struct{ table, from, rule string }

// entry is a rule in a shared chain (MESH-PREROUTING, MESH-SERVICES, …).
// Shared chains are sets: each entry is independent of the others, is
// added with -A and removed with -D, so adding a service never flushes
// them. A shared chain exists, with its jumps from built-in chains, while
// it has entries; a large one keeps them in bucket chains (buckets.go).
type entry struct{ table, chain, rule string }

func (e entry) key() chainKey { return chainKey{e.table, e.chain} }

// unit is the part of a namespace's rules that changes together: one
// service, or the sandbox-wide SNAT, or all host rules. Units are values:
// a renderer that reuses a *unit says "unchanged", and the syncer skips it.
type unit struct {
	entries []entry
	// index holds the entries too once there are more than indexAbove
	// (the host unit has one per published port): a lookup is then one
	// probe rather than a walk, and rendering and diffing it grow with
	// the ports rather than with their square.
	index map[entry]struct{}
	// own are chains only this unit uses (a service's rotation), rewritten
	// whole (declared, thus flushed, and refilled) when they change.
	own map[chainKey][]string
}

// ruleset is the wanted state of one namespace: units by key (pure data).
// Entries must be unique across units.
type ruleset map[string]*unit

// newUnit collects entries (without duplicates) and own chains.
func newUnit() *unit { return &unit{own: map[chainKey][]string{}} }

// indexAbove is the number of entries past which a unit indexes them.
const indexAbove = 16

func (u *unit) add(table, chain, rule string) {
	e := entry{table, chain, rule}
	if u.has(e) {
		return
	}
	u.entries = append(u.entries, e)
	switch {
	case u.index != nil:
		u.index[e] = struct{}{}
	case len(u.entries) > indexAbove:
		u.index = make(map[entry]struct{}, 2*len(u.entries))
		for _, x := range u.entries {
			u.index[x] = struct{}{}
		}
	}
}

// has says whether the unit holds e.
func (u *unit) has(e entry) bool {
	if u.index != nil {
		_, ok := u.index[e]
		return ok
	}
	return slices.Contains(u.entries, e)
}

// counts is the number of rules in each chain that holds entries: a
// shared chain, or a bucket of one and the shared chain then holding the
// jumps to its buckets (see buckets.go).
type counts map[chainKey]int

func (r ruleset) counts() counts {
	c := counts{}
	for k, rules := range layout(r.sharedEntries()) {
		c[k] = len(rules)
	}
	return c
}

// plan is what one payload does, per table.
type plan map[string]*tableOps

type tableOps struct {
	ordered map[string]bool     // own chains: their rules keep their order
	declare map[string]bool     // chains to create or flush
	del     []string            // "-D CHAIN RULE"
	add     map[string][]string // chain → rules to append, in order
	ins     []string            // "-I CHAIN 1 RULE"
	drop    []string            // "-X CHAIN"
}

func (p plan) table(t string) *tableOps {
	if p[t] == nil {
		p[t] = &tableOps{ordered: map[string]bool{}, declare: map[string]bool{}, add: map[string][]string{}}
	}
	return p[t]
}

func (p plan) appendRules(k chainKey, rules ...string) {
	ops := p.table(k.table)
	ops.add[k.chain] = append(ops.add[k.chain], rules...)
}

// addOwnChain declares k (creating or flushing it) and fills it in order.
func (p plan) addOwnChain(k chainKey, rules []string) {
	p.table(k.table).declare[k.chain] = true
	p.table(k.table).ordered[k.chain] = true
	p.appendRules(k, rules...)
}

// removeChain flushes (by declaring) and deletes k.
func (p plan) removeChain(k chainKey) {
	ops := p.table(k.table)
	ops.declare[k.chain] = true
	ops.drop = append(ops.drop, "-X "+k.chain)
}

func (p plan) deleteRule(k chainKey, rule string) {
	p.table(k.table).del = append(p.table(k.table).del, "-D "+k.chain+" "+rule)
}

func (p plan) jumps(k chainKey, insert bool) {
	for _, j := range hookJumps[k] {
		if insert {
			p.table(j.table).ins = append(p.table(j.table).ins, "-I "+j.from+" 1 "+j.rule)
		} else {
			p.table(j.table).del = append(p.table(j.table).del, "-D "+j.from+" "+j.rule)
		}
	}
}

// diffPlan is the incremental payload from have (applied last, with its
// counts) to want, and the counts after it. Only units that are not the
// very same *unit are looked at, so its cost follows what changed, not
// how much there is: shared chains get -A and -D of single entries, own
// chains are rewritten whole, and a chain that holds entries is created
// (with its jumps from built-in chains, or from its parent for a bucket)
// when it gets its first entry and removed when it loses its last. A
// shared chain whose entries move into or out of buckets (its count
// crossing bucketThreshold) is rewritten whole, with its buckets.
func diffPlan(have, want ruleset, hc counts) (plan, counts) {
	p, nc := plan{}, maps.Clone(hc)
	var changed []string
	for k, u := range want {
		if have[k] != u {
			changed = append(changed, k)
		}
	}
	for k := range have {
		if want[k] == nil {
			changed = append(changed, k)
		}
	}
	adds, dels := map[chainKey][]string{}, map[chainKey][]string{}
	for _, k := range changed {
		p.diffUnit(have[k], want[k], adds, dels)
	}
	totals := hc.totals()
	rewritten := map[chainKey]bool{}
	var gone []entry
	for k := range adds {
		if _, ok := dels[k]; !ok {
			dels[k] = nil
		}
	}
	for k, del := range dels {
		before := totals[k]
		after := before + len(adds[k]) - len(del)
		if splits(k, before) != splits(k, after) {
			p.relayout(k, want.entriesOf(k), hc, nc)
			rewritten[k] = true
			continue
		}
		for _, r := range del {
			c, text := place(k, r, after)
			nc[c]--
			gone = append(gone, entry{c.table, c.chain, text})
		}
		for _, r := range adds[k] {
			c, text := place(k, r, after)
			p.appendRules(c, text)
			nc[c]++
		}
	}
	// Buckets come and go with their entries, and the rules of their
	// parent that enter them with them.
	for k := range nc {
		parent, ok := bucketParent(k)
		if !ok || rewritten[parent] {
			continue
		}
		before, after := hc[k] > 0, nc[k] > 0
		switch {
		case !before && after:
			p.table(k.table).declare[k.chain] = true
			p.appendRules(parent, bucketRef(parent, k))
			nc[parent]++
		case before && !after:
			p.removeChain(k)
			gone = append(gone, entry{parent.table, parent.chain, bucketRef(parent, k)})
			nc[parent]--
			delete(nc, k)
		}
	}
	for k := range nc {
		if _, ok := bucketParent(k); ok {
			continue
		}
		before, after := hc[k] > 0, nc[k] > 0
		switch {
		case !before && after:
			p.table(k.table).declare[k.chain] = true
			p.jumps(k, true)
		case before && !after:
			p.removeChain(k)
			p.jumps(k, false)
		}
		if nc[k] == 0 {
			delete(nc, k)
		}
	}
	for _, e := range gone {
		if nc[e.key()] > 0 { // a chain that goes is flushed instead
			p.deleteRule(e.key(), e.rule)
		}
	}
	return p, nc
}

// relayout rewrites shared chain k whole, holding rules, with its buckets:
// those it had (by hc) are removed, and the new counts set in nc. Whether
// k itself comes or goes is left to the caller, as for any chain.
func (p plan) relayout(k chainKey, rules []string, hc, nc counts) {
	for c := range hc {
		if parent, ok := bucketParent(c); ok && parent == k {
			p.removeChain(c)
			delete(nc, c)
		}
	}
	nc[k] = 0
	for c, rs := range layout(map[chainKey][]string{k: rules}) {
		if len(rs) == 0 {
			continue
		}
		p.table(c.table).declare[c.chain] = true
		p.appendRules(c, rs...)
		nc[c] = len(rs)
	}
}

// diffUnit plans the change from unit h to unit w (either may be nil) of
// own chains, and collects the entries to add to and delete from each
// shared chain; the caller places them.
func (p plan) diffUnit(h, w *unit, adds, dels map[chainKey][]string) {
	if h == nil {
		h = newUnit()
	}
	if w == nil {
		w = newUnit()
	}
	for _, e := range h.entries {
		if !w.has(e) {
			dels[e.key()] = append(dels[e.key()], e.rule)
		}
	}
	for _, e := range w.entries {
		if !h.has(e) {
			adds[e.key()] = append(adds[e.key()], e.rule)
		}
	}
	for c := range h.own {
		if _, ok := w.own[c]; !ok {
			p.removeChain(c)
		}
	}
	for c, rules := range w.own {
		if old, ok := h.own[c]; !ok || !slices.Equal(old, rules) {
			p.addOwnChain(c, rules)
		}
	}
}

// fullPlan rebuilds everything: every wanted chain is declared (thus
// flushed) and refilled, a wanted set that exists gets the members it
// lacks and loses those it should not have, chains and sets of ours the
// kernel holds but we do not want are removed, and the jumps from
// built-in chains are made exactly the wanted ones, once each, whatever
// was there.
func fullPlan(observed saved, want ruleset, o owner) (plan, counts) {
	p, wc := plan{}, counts{}
	chains := map[chainKey]bool{}
	wantJumps := map[jump]bool{}
	for k, rules := range layout(want.sharedEntries()) {
		chains[k] = true
		wc[k] = len(rules)
		if have, ok := observed[k.table][k.chain]; ok && k.table == setTable {
			// A set that is there is mended member by member: flushing
			// it would leave new connections unmarked meanwhile (a
			// restart of meshd, which starts with a full resync).
			missing, extra := multisetDiff(rules, have, strings.Compare)
			for _, m := range extra {
				p.deleteRule(k, m)
			}
			p.appendRules(k, missing...)
			continue
		}
		p.table(k.table).declare[k.chain] = true
		p.appendRules(k, rules...)
	}
	for _, u := range want {
		for c, rules := range u.own {
			p.addOwnChain(c, rules)
			chains[c] = true
		}
	}
	for k := range wc {
		for _, j := range hookJumps[k] {
			wantJumps[j] = true
		}
	}
	for _, k := range observed.chainKeys() {
		if o.owns(k) && !chains[k] {
			p.removeChain(k)
		}
	}
	kept := map[jump]bool{}
	for _, j := range observed.builtinRules() {
		if !o.owns(chainKey{j.table, jumpTarget(j.rule)}) {
			continue
		}
		if wantJumps[j] && !kept[j] {
			kept[j] = true
			continue
		}
		p.table(j.table).del = append(p.table(j.table).del, "-D "+j.from+" "+j.rule)
	}
	for j := range wantJumps {
		if !kept[j] {
			p.table(j.table).ins = append(p.table(j.table).ins, "-I "+j.from+" 1 "+j.rule)
		}
	}
	return p, wc
}

// write renders p as iptables-restore input: tables in name order, each
// with its declarations, deletions, appends (by chain), inserts and chain
// deletions, then COMMIT. That order is always valid: a chain is declared
// before anything jumps to it and deleted after the last jump to it is.
// Shared chains' entries are sorted; own chains keep their order. An empty
// plan writes nothing.
func (p plan) write(w io.Writer) error {
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(p)) {
		ops := p[t]
		if len(ops.declare)+len(ops.del)+len(ops.add)+len(ops.ins)+len(ops.drop) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", t)
		for _, c := range slices.Sorted(maps.Keys(ops.declare)) {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		slices.Sort(ops.del)
		for _, l := range ops.del {
			b.WriteString(l + "\n")
		}
		for _, c := range slices.Sorted(maps.Keys(ops.add)) {
			rules := ops.add[c]
			if !ops.ordered[c] {
				slices.Sort(rules)
			}
			for _, r := range rules {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		slices.Sort(ops.ins)
		slices.Sort(ops.drop)
		for _, l := range append(ops.ins, ops.drop...) {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p plan) bytes() []byte {
	var b strings.Builder
	_ = p.write(&b)
	return []byte(b.String())
}

// inSync says whether the kernel (observed) visibly holds want: the same
// chains of ours, each with the wanted number of rules, the same members
// in each set of ours, and exactly the wanted jumps from built-in chains,
// once each. A full resync that finds
// the namespace in sync writes nothing, so it can run often without
// resetting rotation counters; what it repairs is what drifts in practice
// (a flushed chain, a firewall reload, a deleted jump). A rule edited in
// place, keeping the count, is not seen here; it is the price of not
// normalising iptables-save's spelling of every match.
func inSync(observed saved, want ruleset, o owner) bool {
	wantCount := map[chainKey]int(want.counts())
	wantJumps := map[jump]bool{}
	for _, u := range want {
		for c, rules := range u.own {
			wantCount[c] += len(rules)
		}
	}
	for k := range want.counts() {
		for _, j := range hookJumps[k] {
			wantJumps[j] = true
		}
	}
	for _, k := range observed.chainKeys() {
		if n, ok := wantCount[k]; o.owns(k) && (!ok || n != len(observed[k.table][k.chain])) {
			return false
		}
	}
	for k := range wantCount {
		if _, ok := observed[k.table][k.chain]; !ok {
			return false
		}
	}
	// A set's members are compared whole: they are spelled as ipset
	// prints them, and a mark changed in place keeps the count.
	for k, members := range layout(want.sharedEntries()) {
		if k.table == setTable && !sameMembers(members, observed[k.table][k.chain]) {
			return false
		}
	}
	seen := map[jump]bool{}
	for _, j := range observed.builtinRules() {
		if !o.owns(chainKey{j.table, jumpTarget(j.rule)}) {
			continue
		}
		if !wantJumps[j] || seen[j] {
			return false
		}
		seen[j] = true
	}
	return len(seen) == len(wantJumps)
}

func sameMembers(want, have []string) bool {
	if len(want) != len(have) {
		return false
	}
	a, b := slices.Clone(want), slices.Clone(have)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
