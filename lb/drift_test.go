package lb

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The periodic check rebuilds only when the kernel lost what was applied.
func TestPeriodicCheckRepairsDriftOnly(t *testing.T) {
	rules := NewFakeRules()
	clock := time.Unix(1_800_000_000, 0)
	h := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
	h.p.s.now = func() time.Time { return clock }
	want := HostRules{IngressGW: netip.MustParseAddr("172.18.0.2"),
		Published: []Port{{Proto: "tcp", Published: 8888, Target: 80}}}
	ctx := context.Background()
	if err := h.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	applied := len(rules.Payloads())

	clock = clock.Add(DefaultFullResyncPeriod)
	if err := h.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got := len(rules.Payloads()); got != applied {
		t.Errorf("a periodic check without drift wrote %d payloads, want none", got-applied)
	}

	// A firewall reload: the nat table's chains of ours are gone.
	// Declaring a chain in iptables-restore flushes it.
	if err := rules.Apply(ctx, []byte("*nat\n:MESH-INGRESS - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(DefaultFullResyncPeriod)
	if err := h.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	save, err := rules.Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(save), "--dport 8888 -j DNAT --to-destination 172.18.0.2:8888") {
		t.Errorf("the flushed DNAT was not repaired:\n%s", save)
	}
}
