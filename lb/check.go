package lb

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// The dry runs: what a sync would change, reported instead of applied.
// They render what they compare with the same functions the syncs do
// (sandboxRules, hostRules, taskRules) and read the kernel the same way,
// so a difference they report is one a sync repairs. They are stricter
// than the syncers' periodic check (inSync), which counts rules per chain:
// a check compares every rule, as iptables-save spells it, so a rule
// edited in place shows here though the syncer leaves it.

// States of a [Diff].
const (
	Missing = "missing" // wanted, not in the kernel
	Extra   = "extra"   // in the kernel, not wanted
	Differs = "differs" // in both, not alike
)

// DiffFlowTable is the Kind of a [Diff] in a sandbox's nftables table of
// ours (flowtable.go): the table, or one line of nft's listing of it.
const DiffFlowTable = "flowtable"

// Diff is one difference between what a namespace should hold and what
// its kernel holds.
type Diff struct {
	// Kind is "chain" (one of ours), "rule" (in one of our chains, or a
	// jump to one from a built-in chain), "set" (an ipset of ours, see
	// sets.go), "member" (of one), "ipvs" (a fwmark service), "backend"
	// (a destination of one) or DiffFlowTable.
	Kind  string
	State string // Missing, Extra or Differs
	// Object is the rule as "iptables -S" prints it ("-A MESH-SNAT -d
	// 10.255.0.0/16 …"), the chain's name, the IPVS service as ipvsadm
	// -Ln prints it ("FWM 256 rr") or the backend ("FWM 256 ->
	// 10.255.0.5 weight 1"); what is wanted, or for Extra what the kernel
	// holds.
	Object string
	// Where is the table of a chain or rule ("nat"), "ipset" for a set or
	// a member ("MESH-PREROUTING-TCP 8888 comment …", as "ipset add"
	// takes it), or "ipvs".
	Where string
	// Have is, for Differs, what the kernel holds instead.
	Have string
}

// Check compares the host namespace's chains of ours with what Sync(want)
// would make them and returns the differences, sorted; it changes
// nothing.
func (h *HostSyncer) Check(ctx context.Context, want HostRules) ([]Diff, error) {
	if err := want.validate(); err != nil {
		return nil, err
	}
	return h.p.s.dryRun(ctx, hostRules(want))
}

// Check compares the task sandbox's chains of ours with what Sync(want)
// would make them, as [HostSyncer.Check].
func (t *TaskSyncer) Check(ctx context.Context, want TaskRules) ([]Diff, error) {
	if err := want.validate(); err != nil {
		return nil, err
	}
	return t.s.dryRun(ctx, taskRules(want))
}

// Check compares the sandbox's rules, for IPVS its table, and its
// nftables table of ours with what Sync(sb) would make them and returns
// the differences: rules first, then IPVS services and backends by mark,
// then the flowtable's lines. It changes nothing, not even what the next
// Sync compares with.
func (p *plane) Check(ctx context.Context, sb Sandbox) ([]Diff, error) {
	if err := sb.validate(); err != nil {
		return nil, err
	}
	rs, err := sandboxRules(p.mode, sb)
	if err != nil {
		return nil, err
	}
	diffs, err := p.rules.dryRun(ctx, rs)
	if err != nil {
		return diffs, err
	}
	if p.mode == ModeIPVS {
		p.mu.Lock() // keeps IPVS netlink requests apart
		ipvs, err := diffIPVS(p.ipvs, sb.Services)
		p.mu.Unlock()
		if diffs = append(diffs, ipvs...); err != nil {
			return diffs, err
		}
	}
	flow, err := p.flow.check(ctx, p.offload && len(sb.Services) > 0, sb.Ifaces)
	return append(diffs, flow...), err
}

// dryRun reads the namespace's rules and compares them with want.
func (s *syncer) dryRun(ctx context.Context, want ruleset) ([]Diff, error) {
	data, err := s.rules.Save(ctx)
	if err != nil {
		return nil, err
	}
	observed, err := parseSave(data)
	if err != nil {
		return nil, err
	}
	return diffRules(observed, want, s.owner), nil
}

// diffRules compares the chains o owns in observed, and the jumps to them
// from built-in chains, with want: each chain missing or extra, then in
// each chain the rules missing or extra (a multiset: a rule the kernel
// holds twice where one is wanted is one extra), then the jumps. Rules
// are compared as iptables-save spells them (canonicalRule).
func diffRules(observed saved, want ruleset, o owner) []Diff {
	wantRules := map[chainKey][]string{}
	for k, rules := range layout(want.sharedEntries()) {
		for _, r := range rules {
			wantRules[k] = append(wantRules[k], canonicalRule(r))
		}
	}
	for _, u := range want {
		for c, rules := range u.own {
			for _, r := range rules {
				wantRules[c] = append(wantRules[c], canonicalRule(r))
			}
		}
	}
	keys := map[chainKey]bool{}
	for k := range wantRules {
		keys[k] = true
	}
	for _, k := range observed.chainKeys() {
		if o.owns(k) {
			keys[k] = true
		}
	}
	var out []Diff
	for _, k := range sortedKeys(keys) {
		have, ok := observed[k.table][k.chain]
		wanted, isWanted := wantRules[k]
		kind, ruleKind, prefix := "chain", "rule", "-A "+k.chain+" "
		if k.table == setTable {
			kind, ruleKind, prefix = "set", "member", k.chain+" "
		}
		switch {
		case !ok:
			out = append(out, Diff{Kind: kind, State: Missing, Object: k.chain, Where: k.table})
		case !isWanted:
			out = append(out, Diff{Kind: kind, State: Extra, Object: k.chain, Where: k.table})
		}
		canon := make([]string, len(have))
		for i, r := range have {
			canon[i] = canonicalRule(r)
		}
		missing, extra := multisetDiff(wanted, canon, strings.Compare)
		for _, r := range missing {
			out = append(out, Diff{Kind: ruleKind, State: Missing, Object: prefix + r, Where: k.table})
		}
		for _, r := range extra {
			out = append(out, Diff{Kind: ruleKind, State: Extra, Object: prefix + r, Where: k.table})
		}
	}
	return append(out, diffJumps(observed, want, o)...)
}

// diffJumps compares the jumps from built-in chains to chains o owns
// with those want needs: each once.
func diffJumps(observed saved, want ruleset, o owner) []Diff {
	var wanted []jump
	for k := range want.counts() {
		wanted = append(wanted, hookJumps[k]...)
	}
	var have []jump
	for _, j := range observed.builtinRules() {
		if o.owns(chainKey{j.table, jumpTarget(j.rule)}) {
			have = append(have, jump{j.table, j.from, canonicalRule(j.rule)})
		}
	}
	missing, extra := multisetDiff(wanted, have, compareJumps)
	var out []Diff
	for _, st := range []struct {
		state string
		jumps []jump
	}{{Missing, missing}, {Extra, extra}} {
		for _, j := range st.jumps {
			out = append(out, Diff{Kind: "rule", State: st.state, Object: "-A " + j.from + " " + j.rule, Where: j.table})
		}
	}
	return out
}

// multisetDiff returns what want has more of than have, and what have has
// more of than want, each sorted by compare.
func multisetDiff[T comparable](want, have []T, compare func(a, b T) int) (missing, extra []T) {
	n := map[T]int{}
	for _, w := range want {
		n[w]++
	}
	for _, h := range have {
		n[h]--
	}
	for v, c := range n {
		for ; c > 0; c-- {
			missing = append(missing, v)
		}
		for ; c < 0; c++ {
			extra = append(extra, v)
		}
	}
	slices.SortFunc(missing, compare)
	slices.SortFunc(extra, compare)
	return missing, extra
}

func compareJumps(a, b jump) int {
	return cmp.Or(strings.Compare(a.table, b.table), strings.Compare(a.from, b.from), strings.Compare(a.rule, b.rule))
}

// diffIPVS compares the IPVS table with the services wanted, as
// ensureIPVS and removeStaleIPVS would make it: a fwmark service per
// service, with exactly its backends (port 0, their weight).
func diffIPVS(v IPVS, want []Service) ([]Diff, error) {
	svcs, err := v.Services()
	if err != nil {
		return nil, err
	}
	byMark := map[uint32]VirtualService{}
	for _, vs := range svcs {
		byMark[vs.FWMark] = vs
	}
	wanted := map[uint32]Service{}
	for _, s := range want {
		wanted[s.FWMark] = s
	}
	var out []Diff
	for _, mark := range slices.Sorted(maps.Keys(wantedOrHave(wanted, byMark))) {
		s, isWanted := wanted[mark]
		vs, ok := byMark[mark]
		wantVS := VirtualService{FWMark: mark, Scheduler: defaultScheduler}
		switch {
		case !isWanted:
			out = append(out, Diff{Kind: "ipvs", State: Extra, Object: vsString(vs), Where: "ipvs"})
			continue
		case !ok:
			out = append(out, Diff{Kind: "ipvs", State: Missing, Object: vsString(wantVS), Where: "ipvs"})
		case vs != wantVS:
			out = append(out, Diff{Kind: "ipvs", State: Differs, Object: vsString(wantVS), Where: "ipvs", Have: vsString(vs)})
		}
		var have []Destination
		if ok {
			if have, err = v.Destinations(vs); err != nil {
				return nil, err
			}
		}
		out = append(out, diffBackends(mark, backendWeights(s), have)...)
	}
	return out, nil
}

func wantedOrHave(wanted map[uint32]Service, have map[uint32]VirtualService) map[uint32]bool {
	out := map[uint32]bool{}
	for m := range wanted {
		out[m] = true
	}
	for m := range have {
		out[m] = true
	}
	return out
}

// diffBackends compares one service's destinations with the weights
// wanted, by address.
func diffBackends(mark uint32, want map[netip.Addr]int, have []Destination) []Diff {
	var out []Diff
	seen := map[netip.Addr]bool{}
	for _, h := range have {
		w, ok := want[h.Addr]
		switch {
		case !ok || h.Port != 0:
			out = append(out, Diff{Kind: "backend", State: Extra, Object: destString(mark, h), Where: "ipvs"})
		case w != h.Weight:
			out = append(out, Diff{Kind: "backend", State: Differs, Where: "ipvs",
				Object: destString(mark, Destination{Addr: h.Addr, Weight: w}), Have: destString(mark, h)})
		}
		if ok && h.Port == 0 {
			seen[h.Addr] = true
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if !seen[a] {
			out = append(out, Diff{Kind: "backend", State: Missing, Object: destString(mark, Destination{Addr: a, Weight: want[a]}), Where: "ipvs"})
		}
	}
	return out
}

func vsString(vs VirtualService) string { return fmt.Sprintf("FWM %d %s", vs.FWMark, vs.Scheduler) }

func destString(mark uint32, d Destination) string {
	a := d.Addr.String()
	if d.Port != 0 {
		a = netip.AddrPortFrom(d.Addr, d.Port).String()
	}
	return fmt.Sprintf("FWM %d -> %s weight %d", mark, a, d.Weight)
}
