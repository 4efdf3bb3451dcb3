package lb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The address plan of every test in this package:
//
//	underlay         192.168.0.0/24   this node 192.168.0.10
//	clients          203.0.113.0/24   203.0.113.7
//	mesh_gwbridge    172.18.0.0/16    host .1, ingress_sbox .2, task www.1 .3, task web.1 .5
//	ingress network  10.255.0.0/16    ingress_sbox .2, VIPs .4 (www) .7 (api), tasks .5 .6 .8
//	overlay "ovnet"  10.0.0.0/24      lb_ovnet .6, VIPs .2 (www) .7 (web) .9 (api), tasks .3 .4 .8 .10
var (
	nodeIP    = netip.MustParseAddr("192.168.0.10")
	extClient = netip.MustParseAddr("203.0.113.7")
	ingressGW = netip.MustParseAddr("172.18.0.2")
	webTaskGW = netip.MustParseAddr("172.18.0.5")
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func backends(addrs ...string) []Backend {
	var out []Backend
	for _, a := range addrs {
		out = append(out, Backend{Addr: addr(a), Weight: 1})
	}
	return out
}

// world is what one node must program for one scenario.
type world struct {
	ingress, lb Sandbox
	host        HostRules
	task        TaskRules
}

var (
	wwwIngress = Service{Key: "www/ingress", Name: "www", FWMark: 0x100, VIP: addr("10.255.0.4"),
		Ports: []Port{{"tcp", 8888, 80}}, Backends: backends("10.255.0.5", "10.255.0.6")}
	wwwLB = Service{Key: "www/ovnet", Name: "www", FWMark: 0x101, VIP: addr("10.0.0.2"),
		Backends: backends("10.0.0.3", "10.0.0.4")}
	apiIngress = Service{Key: "api/ingress", Name: "api", FWMark: 0x102, VIP: addr("10.255.0.7"),
		Ports: []Port{{"tcp", 9090, 8080}, {"tcp", 9443, 8443}}, Backends: backends("10.255.0.8")}
	apiLB = Service{Key: "api/ovnet", Name: "api", FWMark: 0x103, VIP: addr("10.0.0.9"),
		Backends: backends("10.0.0.10")}
	dnsIngress = Service{Key: "dns/ingress", Name: "dns", FWMark: 0x100, VIP: addr("10.255.0.4"),
		Ports: []Port{{"udp", 5353, 53}}, Backends: backends("10.255.0.5", "10.255.0.6")}
	dnsLB = Service{Key: "dns/ovnet", Name: "dns", FWMark: 0x101, VIP: addr("10.0.0.2"),
		Backends: backends("10.0.0.3", "10.0.0.4")}
	webLB = Service{Key: "web/ovnet", Name: "web", FWMark: 0x102, VIP: addr("10.0.0.7"),
		Backends: backends("10.0.0.8")}
)

func ingressSandbox(svcs ...Service) Sandbox {
	return Sandbox{Kind: SandboxIngress, OwnAddr: addr("10.255.0.2"), Subnet: netip.MustParsePrefix("10.255.0.0/16"), Services: svcs}
}

func lbSandbox(svcs ...Service) Sandbox {
	return Sandbox{Kind: SandboxLB, OwnAddr: addr("10.0.0.6"), Subnet: netip.MustParsePrefix("10.0.0.0/24"), Services: svcs}
}

// scenarios are the golden cases; before, when set, is applied first and
// the golden file holds the incremental payload from it.
var scenarios = []struct {
	name   string
	before *world
	world  world
}{
	{name: "one", world: worldOne},
	{name: "two", world: worldTwo},
	{name: "udp", world: world{
		ingress: ingressSandbox(dnsIngress),
		lb:      lbSandbox(dnsLB),
		host:    HostRules{IngressGW: ingressGW, Published: []Port{{"udp", 5353, 53}}, Egress: gwSubnet},
		task:    TaskRules{Addr: addr("10.255.0.5"), Redirects: []Port{{"udp", 5353, 53}}, DNS: taskDNS},
	}},
	{name: "hostmode", world: world{
		// web publishes 8080:80 in mode=host and runs here as web.1.
		ingress: ingressSandbox(wwwIngress),
		lb:      lbSandbox(wwwLB, webLB),
		host: HostRules{IngressGW: ingressGW, Published: []Port{{"tcp", 8888, 80}},
			HostPorts: []HostPort{{Port{"tcp", 8080, 80}, webTaskGW}}, Egress: gwSubnet},
		task: TaskRules{DNS: taskDNS}, // web.1: host mode needs no redirect, only its resolver
	}},
	// api is removed; www.1's sandbox loses its redirect (a service update
	// that stopped publishing).
	{name: "removed", before: &world{ingress: worldTwo.ingress, lb: worldTwo.lb, host: worldTwo.host, task: worldOne.task},
		world: world{ingress: worldOne.ingress, lb: worldOne.lb, host: worldOne.host}},
}

var (
	worldOne = world{
		ingress: ingressSandbox(wwwIngress),
		lb:      lbSandbox(wwwLB),
		host:    HostRules{IngressGW: ingressGW, Published: []Port{{"tcp", 8888, 80}}, Egress: gwSubnet},
		task:    TaskRules{Addr: addr("10.255.0.5"), Redirects: []Port{{"tcp", 8888, 80}}, DNS: taskDNS},
	}
	// worldTwo adds api; the task is api.1, which publishes two ports.
	worldTwo = world{
		ingress: ingressSandbox(wwwIngress, apiIngress),
		lb:      lbSandbox(wwwLB, apiLB),
		host:    HostRules{IngressGW: ingressGW, Published: []Port{{"tcp", 8888, 80}, {"tcp", 9090, 8080}, {"tcp", 9443, 8443}}, Egress: gwSubnet},
		task:    TaskRules{Addr: addr("10.255.0.8"), Redirects: []Port{{"tcp", 9090, 8080}, {"tcp", 9443, 8443}}, DNS: taskDNS},
	}
	// gwSubnet is mesh_gwbridge's subnet; taskDNS the ports a task's
	// resolver happened to get on 127.0.0.11.
	gwSubnet = netip.MustParsePrefix("172.18.0.0/16")
	taskDNS  = DNSPorts{UDP: 41234, TCP: 38765}
)

// fixedClock is a clock tests move by hand.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// newFakePlane returns a data plane over fakes, its rules, its IPVS (for
// ModeIPVS) and its clock; extra options come after the fakes'.
func newFakePlane(t *testing.T, mode Mode, extra ...Option) (*plane, *FakeRules, *FakeIPVS, *fixedClock) {
	t.Helper()
	rules, ipvs := NewFakeRules(), NewFakeIPVS()
	opts := []Option{WithRules(rules), WithSysctls(&FakeSysctls{AnyKey: true}), WithConntrack(NewFakeConntrack())}
	if mode == ModeIPVS {
		opts = append(opts, WithIPVS(ipvs))
	}
	opts = append(opts, extra...)
	dp, err := NewDataPlane(mode, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := dp.(*plane)
	p.rules.now = clock.now
	return p, rules, ipvs, clock
}

func mustSync(t *testing.T, dp DataPlane, sb Sandbox) {
	t.Helper()
	if err := dp.Sync(context.Background(), sb); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// lastPayload is the last payload rules got, "" if none.
func lastPayload(r *FakeRules) string {
	p := r.Payloads()
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

func saveText(t testing.TB, r Rules) string {
	t.Helper()
	b, err := r.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawState is a namespace's rules as iptables-save gives them, parsed:
// in kernel order. A set's members have no order: they are sorted.
func rawState(t testing.TB, r Rules) saved {
	t.Helper()
	s, err := parseSave([]byte(saveText(t, r)))
	if err != nil {
		t.Fatal(err)
	}
	for _, members := range s[setTable] {
		slices.Sort(members)
	}
	return s
}

// sortedSets sorts the rules of every chain but those whose order is
// their meaning (a service chain's rotation, the ordered
// MESH-BRIDGE-FORWARD): the others' rules are independent, and an
// incremental change appends.
func sortedSets(s saved) saved {
	for _, chains := range s {
		for c, rules := range chains {
			if !strings.HasPrefix(c, svcChainPrefix) && c != chainBridgeForward {
				slices.Sort(rules)
			}
		}
	}
	return s
}

// benchService is the i-th of many services in the ingress sandbox: a
// published port, a VIP and two backends.
func benchService(i int) Service {
	a := func(host int) netip.Addr { return netip.AddrFrom4([4]byte{10, 255, byte(host >> 8), byte(host)}) }
	return Service{Key: fmt.Sprintf("svc%d/ingress", i), Name: fmt.Sprintf("svc%d", i), FWMark: uint32(0x100 + i),
		VIP: a(4 + 3*i), Ports: []Port{{"tcp", uint16(10000 + i), 80}},
		Backends: []Backend{{a(5 + 3*i), 1}, {a(6 + 3*i), 1}}}
}

// checkHolds reports, as label's, each string of in that text lacks and
// each of out that it holds.
func checkHolds(t testing.TB, label, text string, in, out []string) {
	t.Helper()
	for _, s := range in {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q:\n%s", label, s, text)
		}
	}
	for _, s := range out {
		if strings.Contains(text, s) {
			t.Errorf("%s holds %q:\n%s", label, s, text)
		}
	}
}
