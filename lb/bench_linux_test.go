//go:build linux

package lb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nlsub"
	"golang.org/x/sys/unix"
)

// BenchmarkAddService measures adding one service (its marks, its chain,
// its jump: one payload to the sandbox's kept iptables-restore) to a
// sandbox that already has n services. restore-ns/op is the part spent in the
// iptables-restore process; remove-ns/op is the removal that resets each
// round (not timed in ns/op), remove-restore-ns/op its iptables-restore.
// Run as root:
//
//	go test ./lb -run '^$' -bench AddService -benchtime 100x
func BenchmarkAddService(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			ns := newNamespaces(b, "sbox")["sbox"]
			kept := IPTables{NetNS: ns}.Keep()
			b.Cleanup(func() { _ = kept.Close() })
			timed := &timedRules{Rules: kept}
			dp, err := NewDataPlane(ModeIPTables, ns, WithRules(timed))
			if err != nil {
				b.Fatal(err)
			}
			dp.(*plane).rules.fullPeriod = time.Hour // measure the incremental path only
			sb := ingressSandbox()
			for i := range n {
				sb.Services = append(sb.Services, benchService(i))
			}
			more := sb
			more.Services = append(append([]Service{}, sb.Services...), benchService(n))
			ctx := context.Background()
			if err := dp.Sync(ctx, sb); err != nil {
				b.Fatal(err)
			}
			var removal, restore, removeRestore time.Duration
			b.ResetTimer()
			for range b.N {
				timed.spent = 0
				if err := dp.Sync(ctx, more); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				restore += timed.spent
				waitFreed(b, ns) // one change at a time (kept_linux.go)
				timed.spent = 0
				start := time.Now()
				if err := dp.Sync(ctx, sb); err != nil {
					b.Fatal(err)
				}
				removal += time.Since(start)
				removeRestore += timed.spent
				waitFreed(b, ns)
				b.StartTimer()
			}
			b.ReportMetric(float64(restore.Nanoseconds())/float64(b.N), "restore-ns/op")
			b.ReportMetric(float64(removal.Nanoseconds())/float64(b.N), "remove-ns/op")
			b.ReportMetric(float64(removeRestore.Nanoseconds())/float64(b.N), "remove-restore-ns/op")
		})
	}
}

// timedRules measures the time spent in Apply (the iptables-restore
// process), to tell it from the Go side of a sync.
type timedRules struct {
	Rules
	spent time.Duration
}

func (r *timedRules) Apply(ctx context.Context, payload []byte) error {
	start := time.Now()
	defer func() { r.spent += time.Since(start) }()
	return r.Rules.Apply(ctx, payload)
}

// waitFreed returns once what the changes so far deleted in netns is
// freed, and the process children of one-off payloads are gone: until
// then, a rule added with an xtables match or target (-m comment, -j
// MARK) waits for the freeing (nft_compat's check of a new match waits
// for pending destructors), so a change right after a removal pays the
// rest of the removal's grace period. The release of a bound nftables
// netlink socket waits for the same freeing (restore_linux.go).
func waitFreed(tb testing.TB, netns string) {
	tb.Helper()
	lingering.wait()
	err := inNetNS(netns, func() error {
		f, err := nlsub.Open(unix.NETLINK_NETFILTER, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		tb.Fatal(err)
	}
}
