package lb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// foreignRules are someone else's rules in a sandbox (Swarm-like DNS
// chains); the syncers must leave them exactly as they are.
const foreignRules = `*filter
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
*mangle
:DNS-MARK - [0:0]
-A DNS-MARK -j RETURN
-A PREROUTING -j DNS-MARK
COMMIT
*nat
:DOCKER_OUTPUT - [0:0]
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:43645
-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
COMMIT
`

func withForeignRules(t *testing.T) *FakeRules {
	t.Helper()
	r := NewFakeRules()
	if err := r.Apply(context.Background(), []byte(foreignRules)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSyncerFirstFullThenIncrementalThenNothing(t *testing.T) {
	dp, rules, _, _ := newFakePlane(t, ModeIPTables)
	mustSync(t, dp, worldOne.ingress)
	mustSync(t, dp, worldTwo.ingress)
	mustSync(t, dp, worldTwo.ingress)
	p := rules.Payloads()
	if len(p) != 2 {
		t.Fatalf("got %d payloads, want 2 (the identical sync must write nothing)", len(p))
	}
	if strings.Contains(p[1], ":MESH-SERVICES") || strings.Contains(p[1], ":MESH-PREROUTING") {
		t.Errorf("incremental payload redeclares (flushes) a parent chain:\n%s", p[1])
	}
}

// TestSyncerTouchesOnlyChangedChains checks, on the modelled netfilter,
// which chains each change touches.
func TestSyncerTouchesOnlyChangedChains(t *testing.T) {
	apiChain, wwwChain := "nat/"+svcChain(apiIngress.Key), "nat/"+svcChain(wwwIngress.Key)
	wwwThree := wwwIngress
	wwwThree.Backends = backends("10.255.0.5", "10.255.0.6", "10.255.0.9")
	wwwDrain := wwwIngress
	wwwDrain.Backends = []Backend{{addr("10.255.0.5"), 1}, {addr("10.255.0.6"), 0}}
	tests := []struct {
		name     string
		from, to Sandbox
		touched  []string
	}{
		{"add a service", worldOne.ingress, worldTwo.ingress,
			[]string{"mangle/MESH-OUTPUT", "mangle/MESH-PREROUTING", "nat/MESH-SERVICES", apiChain}},
		{"add a backend", worldTwo.ingress, ingressSandbox(wwwThree, apiIngress), []string{wwwChain}},
		{"drain a backend", worldTwo.ingress, ingressSandbox(wwwDrain, apiIngress), []string{wwwChain}},
		{"remove a service", worldTwo.ingress, worldOne.ingress,
			[]string{"mangle/MESH-OUTPUT", "mangle/MESH-PREROUTING", "nat/MESH-SERVICES", apiChain}},
		{"last backend leaves", worldOne.ingress, ingressSandbox(Service{Key: wwwIngress.Key, Name: "www", FWMark: 0x100,
			VIP: wwwIngress.VIP, Ports: wwwIngress.Ports}),
			[]string{"filter/INPUT", "filter/MESH-REJECT", "filter/OUTPUT", "nat/MESH-SERVICES", wwwChain, "nat/OUTPUT", "nat/PREROUTING"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dp, rules, _, _ := newFakePlane(t, ModeIPTables)
			mustSync(t, dp, tt.from)
			mustSync(t, dp, tt.to)
			if diff := cmp.Diff(tt.touched, rules.Touched()); diff != "" {
				t.Errorf("touched chains (-want +got):\n%s\npayload:\n%s", diff, lastPayload(rules))
			}
			// And the result is what a fresh namespace gets (but for
			// the order of independent rules).
			fresh, freshRules, _, _ := newFakePlane(t, ModeIPTables)
			mustSync(t, fresh, tt.to)
			if diff := cmp.Diff(sortedSets(rawState(t, freshRules)), sortedSets(rawState(t, rules))); diff != "" {
				t.Errorf("state after the change differs from a fresh sync (-fresh +changed):\n%s", diff)
			}
		})
	}
}

func TestSyncerRemovesEverything(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) {
			dp, _, ipvs, _ := newFakePlane(t, mode)
			rules := withForeignRules(t)
			dp.rules.rules = rules
			before := saveText(t, rules)
			mustSync(t, dp, worldTwo.ingress)
			mustSync(t, dp, ingressSandbox())
			if diff := cmp.Diff(before, saveText(t, rules)); diff != "" {
				t.Errorf("rules left behind (-before +after):\n%s", diff)
			}
			if svcs, _ := ipvs.Services(); len(svcs) != 0 {
				t.Errorf("IPVS services left behind: %v", svcs)
			}
		})
	}
	rules := withForeignRules(t)
	before := saveText(t, rules)
	h := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
	for _, hr := range []HostRules{worldTwo.host, {}} {
		if err := h.Sync(context.Background(), hr); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(before, saveText(t, rules)); diff != "" {
		t.Errorf("host rules left behind (-before +after):\n%s", diff)
	}
}

func TestSyncerFailureForcesFullResync(t *testing.T) {
	rebuilt := RulesRebuilt()
	dp, rules, _, _ := newFakePlane(t, ModeIPTables)
	mustSync(t, dp, worldOne.ingress)
	rules.FailNext(errors.New("xtables lock held"))
	if err := dp.Sync(context.Background(), worldTwo.ingress); err == nil {
		t.Fatal("sync = nil, want the Apply error")
	}
	mustSync(t, dp, worldTwo.ingress)
	// Neither the first sync nor the resync after a failure is drift.
	if got := RulesRebuilt() - rebuilt; got != 0 {
		t.Errorf("RulesRebuilt went up by %d, want 0", got)
	}
	last := lastPayload(rules)
	for _, decl := range []string{":MESH-SERVICES - [0:0]", ":MESH-PREROUTING - [0:0]", ":" + svcChain(wwwIngress.Key)} {
		if !strings.Contains(last, decl) {
			t.Errorf("resync after a failure does not declare %s:\n%s", decl, last)
		}
	}
	fresh, freshRules, _, _ := newFakePlane(t, ModeIPTables)
	mustSync(t, fresh, worldTwo.ingress)
	if diff := cmp.Diff(saveText(t, freshRules), saveText(t, rules)); diff != "" {
		t.Errorf("after resync (-fresh +resynced):\n%s", diff)
	}
}

// TestSyncerSweepsLeftovers starts from what a crashed earlier run could
// leave: a chain of a service that is gone, our jumps twice, an old jump.
func TestSyncerSweepsLeftovers(t *testing.T) {
	dp, _, _, _ := newFakePlane(t, ModeIPTables)
	rules := withForeignRules(t)
	dp.rules.rules = rules
	leftovers := "*mangle\n:MESH-INPUT - [0:0]\n-A MESH-INPUT -d 10.255.0.9/32 -m comment --comment old -j MARK --set-mark 0x1ff\n" +
		"-I INPUT 1 -j MESH-INPUT\nCOMMIT\n" +
		"*nat\n:MESH-SERVICES - [0:0]\n:MESH-SVC-OLDOLDOL - [0:0]\n-A MESH-SVC-OLDOLDOL -j DNAT --to-destination 10.255.0.9\n" +
		"-A MESH-SERVICES -m mark --mark 0x1ff -m comment --comment old -j MESH-SVC-OLDOLDOL\n" +
		"-I PREROUTING 1 -j MESH-SERVICES\n-I PREROUTING 1 -j MESH-SERVICES\nCOMMIT\n"
	if err := rules.Apply(context.Background(), []byte(leftovers)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, dp, worldOne.ingress)
	fresh, _, _, _ := newFakePlane(t, ModeIPTables)
	freshRules := withForeignRules(t)
	fresh.rules.rules = freshRules
	mustSync(t, fresh, worldOne.ingress)
	if diff := cmp.Diff(saveText(t, freshRules), saveText(t, rules)); diff != "" {
		t.Errorf("leftovers not swept (-fresh +swept):\n%s", diff)
	}
}

// TestSyncerRepairsDrift: a hand flush goes unnoticed by the incremental
// sync, and is repaired by the periodic full resync.
func TestSyncerRepairsDrift(t *testing.T) {
	dp, rules, _, clock := newFakePlane(t, ModeIPTables)
	mustSync(t, dp, worldOne.ingress)
	want := saveText(t, rules)
	rebuilt := RulesRebuilt()
	if err := rules.Apply(context.Background(), []byte("*nat\n:MESH-SERVICES - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(DefaultFullResyncPeriod / 2)
	mustSync(t, dp, worldOne.ingress)
	if saveText(t, rules) == want {
		t.Fatal("drift repaired before the full resync period: the test is broken")
	}
	clock.t = clock.t.Add(DefaultFullResyncPeriod)
	mustSync(t, dp, worldOne.ingress)
	if diff := cmp.Diff(want, saveText(t, rules)); diff != "" {
		t.Errorf("drift not repaired (-want +got):\n%s", diff)
	}
	if got := RulesRebuilt() - rebuilt; got != 1 {
		t.Errorf("RulesRebuilt went up by %d, want 1", got)
	}
	if got := dp.Rebuilt(); got != 1 {
		t.Errorf("the plane's Rebuilt = %d, want 1", got)
	}
}

// TestRecheck: after Recheck the next sync reads the kernel; rules that
// are as applied are left alone (a rewrite would remove rules, which the
// kernel reports, which asks for another Recheck), a flushed chain is
// rebuilt at once.
func TestRecheck(t *testing.T) {
	dp, rules, _, _ := newFakePlane(t, ModeIPTables)
	mustSync(t, dp, worldOne.ingress)
	want := saveText(t, rules)
	applied, rebuilt := len(rules.Payloads()), RulesRebuilt()
	dp.Recheck()
	mustSync(t, dp, worldOne.ingress)
	if n := len(rules.Payloads()); n != applied {
		t.Fatalf("a recheck of rules in place wrote %d payloads:\n%s", n-applied, rules.Payloads()[applied:])
	}
	if got := RulesRebuilt() - rebuilt; got != 0 {
		t.Errorf("a recheck without drift counted %d rebuilds, want 0", got)
	}
	if err := rules.Apply(context.Background(), []byte("*nat\n:MESH-SERVICES - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	dp.Recheck()
	mustSync(t, dp, worldOne.ingress)
	if diff := cmp.Diff(want, saveText(t, rules)); diff != "" {
		t.Errorf("flushed chain not rebuilt on recheck (-want +got):\n%s", diff)
	}
	if got := RulesRebuilt() - rebuilt; got != 1 {
		t.Errorf("RulesRebuilt went up by %d after a flush, want 1", got)
	}
}

func TestSyncerSaveError(t *testing.T) {
	s := newSyncer(failingSave{NewFakeRules()}, sandboxOwner)
	want, err := sandboxRules(ModeIPTables, worldOne.ingress)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.sync(context.Background(), want); err == nil {
		t.Fatal("sync = nil, want the Save error")
	}
	if !s.needFull {
		t.Error("a failed full resync must be retried")
	}
}

type failingSave struct{ *FakeRules }

func (failingSave) Save(context.Context) ([]byte, error) { return nil, errors.New("no iptables-save") }

// TestDiffFromNothingIsFull: the incremental plan from an empty namespace
// writes exactly what a full rebuild of that empty namespace writes, with
// and without bucket chains.
func TestDiffFromNothingIsFull(t *testing.T) {
	t.Run("plain", diffFromNothingIsFull)
	t.Run("buckets", func(t *testing.T) {
		withBucketThreshold(t, 1)
		diffFromNothingIsFull(t)
	})
}

func diffFromNothingIsFull(t *testing.T) {
	for _, sc := range scenarios {
		w := sc.world
		sets := map[string]ruleset{"host": hostRules(w.host), "task": taskRules(w.task)}
		for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
			for kind, sb := range map[string]Sandbox{"ingress": w.ingress, "lb": w.lb} {
				rs, err := sandboxRules(mode, sb)
				if err != nil {
					t.Fatal(err)
				}
				sets[kind+"/"+string(mode)] = rs
			}
		}
		for name, rs := range sets {
			d, dc := diffPlan(ruleset{}, rs, counts{})
			f, fc := fullPlan(nil, rs, sandboxOwner)
			if diff := cmp.Diff(string(f.bytes()), string(d.bytes())); diff != "" {
				t.Errorf("%s %s: diff from nothing differs from full (-full +diff):\n%s", sc.name, name, diff)
			}
			if diff := cmp.Diff(fc, dc, cmp.AllowUnexported(chainKey{})); diff != "" {
				t.Errorf("%s %s: counts (-full +diff):\n%s", sc.name, name, diff)
			}
		}
	}
}

// TestVerifyIPVS: an IPVS destination or service removed by hand
// (ipvsadm -d, -D) comes back on VerifyIPVS, without a Sync; the iptables
// plane has nothing to verify.
func TestVerifyIPVS(t *testing.T) {
	dp, _, ipvs, _ := newFakePlane(t, ModeIPVS)
	mustSync(t, dp, worldOne.ingress)
	want := ipvs.Dump()
	svcs, err := ipvs.Services()
	if err != nil || len(svcs) == 0 {
		t.Fatalf("services %v, %v", svcs, err)
	}
	dests, err := ipvs.Destinations(svcs[0])
	if err != nil || len(dests) == 0 {
		t.Fatalf("destinations %v, %v", dests, err)
	}
	if err := ipvs.RemoveDestination(svcs[0], dests[0]); err != nil {
		t.Fatal(err)
	}
	if err := dp.VerifyIPVS(); err != nil {
		t.Fatal(err)
	}
	if got := ipvs.Dump(); got != want {
		t.Errorf("destination not restored:\n--- want\n%s--- got\n%s", want, got)
	}
	if err := ipvs.RemoveService(svcs[0]); err != nil {
		t.Fatal(err)
	}
	if err := dp.VerifyIPVS(); err != nil {
		t.Fatal(err)
	}
	if got := ipvs.Dump(); got != want {
		t.Errorf("service not restored:\n--- want\n%s--- got\n%s", want, got)
	}
	ipt, _, _, _ := newFakePlane(t, ModeIPTables)
	if err := ipt.VerifyIPVS(); err != nil {
		t.Errorf("iptables plane: %v", err)
	}
}
