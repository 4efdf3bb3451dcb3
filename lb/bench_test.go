package lb

import (
	"context"
	"net/netip"
	"testing"
)

// BenchmarkHostSync times what a node spends on its own rules when one
// service is published beside 1000 others and then removed: two syncs
// of the host chains, rendered and diffed (the kernel is a fake, so
// this is the CPU of the syncer alone).
//
//	go test -run '^$' -bench HostSync ./lb/
func BenchmarkHostSync(b *testing.B) {
	want := HostRules{IngressGW: netip.MustParseAddr("172.18.0.2"), Egress: netip.MustParsePrefix("172.18.0.0/16")}
	for i := range 1000 {
		want.Published = append(want.Published, Port{Proto: "tcp", Published: uint16(20000 + i), Target: 80})
	}
	more := want
	more.Published = append(append([]Port{}, want.Published...), Port{Proto: "tcp", Published: 30000, Target: 80})
	h := NewHostSyncer(NewFakeRules(), WithConntrack(NewFakeConntrack()))
	ctx := context.Background()
	if err := h.Sync(ctx, want); err != nil {
		b.Fatal(err)
	}
	h.p.s.fullPeriod = 1 << 62 // the incremental path only
	b.ResetTimer()
	for range b.N {
		if err := h.Sync(ctx, more); err != nil {
			b.Fatal(err)
		}
		if err := h.Sync(ctx, want); err != nil {
			b.Fatal(err)
		}
	}
}
