package lb_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/meshd/meshd/lb"
)

// A data plane on fakes needs no root and no IPVS in the kernel: the
// rules go to a FakeRules, the services to a FakeIPVS, the conntrack
// deletions to a FakeConntrack and the sysctls to a FakeSysctls. The
// namespace path is then only a name.
func ExampleNewDataPlane() {
	rules, ipvs := lb.NewFakeRules(), lb.NewFakeIPVS()
	sysctls := &lb.FakeSysctls{AnyKey: true}
	dp, err := lb.NewDataPlane(lb.ModeIPVS, "/run/meshd/netns/ingress_sbox",
		lb.WithRules(rules), lb.WithIPVS(ipvs), lb.WithConntrack(lb.NewFakeConntrack()),
		lb.WithSysctls(sysctls))
	if err != nil {
		panic(err)
	}
	defer dp.Close()
	www := lb.Service{Key: "www/ingress", Name: "www", FWMark: 0x100, VIP: netip.MustParseAddr("10.255.0.5"),
		Ports:    []lb.Port{{Proto: "tcp", Published: 8080, Target: 80}},
		Backends: []lb.Backend{{Addr: netip.MustParseAddr("10.255.0.6"), Weight: 1}, {Addr: netip.MustParseAddr("10.255.0.7"), Weight: 1}}}
	sb := lb.Sandbox{Kind: lb.SandboxIngress, OwnAddr: netip.MustParseAddr("10.255.0.2"),
		Subnet: netip.MustParsePrefix("10.255.0.0/16"), Services: []lb.Service{www}}
	if err := dp.Sync(context.Background(), sb); err != nil {
		panic(err)
	}
	svcs, _ := ipvs.Services()
	for _, s := range svcs {
		dests, _ := ipvs.Destinations(s)
		fmt.Println("FWM", s.FWMark, s.Scheduler, len(dests), "destinations")
	}
	fmt.Println("ip_forward", sysctls.Vals["net/ipv4/ip_forward"])
	fmt.Println(len(rules.Payloads()), "iptables-restore payload")
	// Output:
	// FWM 256 rr 2 destinations
	// ip_forward 1
	// 1 iptables-restore payload
}
