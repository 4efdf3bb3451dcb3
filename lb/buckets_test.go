package lb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// withBucketThreshold makes shared chains with more than n entries use
// buckets until the test ends, so that small scenarios exercise them.
func withBucketThreshold(t testing.TB, n int) {
	t.Helper()
	old := bucketThreshold
	bucketThreshold = n
	t.Cleanup(func() { bucketThreshold = old })
}

func TestBucketParent(t *testing.T) {
	for _, tt := range []struct {
		k      chainKey
		parent string
	}{
		{chainKey{"mangle", "MESH-PREROUTING-0"}, ""}, // split into sets
		{chainKey{setTable, "MESH-PREROUTING-TCP"}, chainMarkPre},
		{chainKey{setTable, "MESH-INPUT-VIP"}, chainMarkIn},
		{chainKey{setTable, "MESH-OUTPUT-UDP"}, chainMarkOut},
		{chainKey{setTable, "MESH-SERVICES-TCP"}, ""},
		{chainKey{"nat", "MESH-SERVICES-A"}, chainServices},
		{chainKey{"filter", "MESH-REJECT-0"}, chainReject},
		{chainKey{"nat", "MESH-INGRESS-3"}, chainIngress},
		{chainKey{"nat", chainIngressSNAT}, ""},    // a chain of its own, not a bucket
		{chainKey{"filter", "MESH-INGRESS-3"}, ""}, // filter MESH-INGRESS is not split
		{chainKey{"nat", "MESH-SERVICES-10"}, ""},  // beyond bucketCount
		{chainKey{"nat", "MESH-SERVICES-a"}, ""},   // not as bucketOf spells it
		{chainKey{"mangle", chainMarkPre}, ""},
		{chainKey{"nat", svcChain("www/ingress")}, ""},
	} {
		p, ok := bucketParent(tt.k)
		table := tt.k.table
		if table == setTable {
			table = "mangle" // the sets of the mark chains
		}
		if ok != (tt.parent != "") || ok && p != (chainKey{table, tt.parent}) {
			t.Errorf("bucketParent(%v) = %v, %v; want %q", tt.k, p, ok, tt.parent)
		}
	}
	for _, k := range sortedKeys(bucketed) {
		for _, b := range bucketsOf(k) {
			if p, ok := bucketParent(b); !ok || p != k || len(b.chain) > maxChainName {
				t.Fatalf("bucket %v of %v has parent %v, %v", b, k, p, ok)
			}
		}
	}
}

// TestEveryEntryHasABucket renders services of every shape on both planes
// and checks that each entry of a split chain finds a bucket (a set, or a
// bucket chain its parent's reference leads it to), never staying behind
// in its parent.
func TestEveryEntryHasABucket(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		for _, kind := range []string{SandboxIngress, SandboxLB} {
			sb := ingressSandbox()
			sb.Kind = kind
			for i := range 40 {
				s := benchService(i)
				if i%3 == 0 {
					s.Ports = append(s.Ports, Port{"udp", s.Ports[0].Published, 53})
				}
				if i%5 == 0 {
					s.Backends = nil // a MESH-REJECT entry on the iptables plane
				}
				sb.Services = append(sb.Services, s)
			}
			rs, _, _, err := newSandboxRenderer(mode).rules(sb)
			if err != nil {
				t.Fatal(err)
			}
			for k, rules := range rs.sharedEntries() {
				for _, rule := range rules {
					b, _ := bucketOf(k, rule)
					if p, ok := bucketParent(b); bucketed[k] != 0 && (!ok || p != k) {
						t.Errorf("%s %s: %v entry %q stays in its parent", mode, kind, k, rule)
					}
					if m := markRE.FindStringSubmatch(rule); bucketed[k] == splitMark && m != nil {
						v, _ := strconv.ParseUint(m[1], 0, 32)
						if want := fmt.Sprintf("--mark %#x/0xf -j %s", v%16, b.chain); !strings.Contains(bucketRef(k, b), want) {
							t.Errorf("%q in %s, entered by %q", rule, b.chain, bucketRef(k, b))
						}
					}
				}
			}
		}
	}
}

// TestBucketsFollowTheCount adds services one by one past the threshold
// and removes them in another order, on both planes and with published
// ports on the host: after every incremental sync the namespace holds
// exactly what a check of the same model wants (every rule, in the chains
// that layout puts it in), and a full resync finds nothing to repair.
func TestBucketsFollowTheCount(t *testing.T) {
	withBucketThreshold(t, 4)
	ctx := context.Background()
	for _, mode := range []Mode{ModeIPTables, ModeIPVS} {
		t.Run(string(mode), func(t *testing.T) {
			dp, rules, _, _ := newFakePlane(t, mode)
			host := NewHostSyncer(rules, WithConntrack(NewFakeConntrack()))
			const n = 12
			var order []int
			for i := range n {
				order = append(order, i)
			}
			var live []int
			step := func(name string) {
				t.Helper()
				sb := ingressSandbox()
				hr := HostRules{IngressGW: ingressGW}
				for _, i := range live {
					s := benchService(i)
					sb.Services = append(sb.Services, s)
					hr.Published = append(hr.Published, s.Ports...)
				}
				mustSync(t, dp, sb)
				if err := host.Sync(ctx, hr); err != nil {
					t.Fatal(err)
				}
				if d, err := dp.Check(ctx, sb); err != nil || len(d) > 0 {
					t.Fatalf("%s: sandbox check: %+v, %v", name, d, err)
				}
				if d, err := host.Check(ctx, hr); err != nil || len(d) > 0 {
					t.Fatalf("%s: host check: %+v, %v", name, d, err)
				}
				saved, err := parseSave([]byte(saveText(t, rules)))
				if err != nil {
					t.Fatal(err)
				}
				p := dp
				if !inSync(saved, p.rules.have, p.rules.owner) {
					t.Fatalf("%s: the periodic check would see drift", name)
				}
			}
			for _, i := range order {
				live = append(live, i)
				step(fmt.Sprintf("add %d", i))
			}
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
			for len(live) > 0 {
				gone := live[len(live)-1]
				live = live[:len(live)-1]
				step(fmt.Sprintf("remove %d", gone))
			}
			left, err := parseSave([]byte(saveText(t, rules)))
			if err != nil {
				t.Fatal(err)
			}
			if len(left.chainKeys())+len(left.builtinRules()) > 0 {
				t.Errorf("removing everything left:\n%s", saveText(t, rules))
			}
		})
	}
}
