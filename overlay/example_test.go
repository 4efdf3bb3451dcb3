package overlay_test

import (
	"fmt"
	"net/netip"

	"github.com/meshd/meshd/overlay"
)

// One FakeKernel stands for a whole node: the host namespace "", the
// overlay namespaces under NSDir and the sandboxes the caller makes with
// EnsureNS. Here the ingress sandbox joins the ingress network on eth0,
// gets a service VIP there, and reaches the node through the gateway
// bridge on eth1, as the agent builds it; no root is needed.
func ExampleFakeKernel() {
	k := overlay.NewFakeKernel()
	sbox := "/run/meshd/netns/ingress_sbox"
	ov, err := overlay.New(overlay.Config{NSDir: "/run/meshd/netns", UnderlayAddr: netip.MustParseAddr("192.168.0.10"), Kernel: k})
	if err != nil {
		panic(err)
	}
	gw, err := overlay.NewGatewayBridge(overlay.GatewayBridgeConfig{Name: "mesh_gwbridge", Kernel: k,
		Subnet: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1")})
	if err != nil {
		panic(err)
	}
	ingress := overlay.Network{ID: "ingressnet0123", VNI: 4096,
		Subnet: netip.MustParsePrefix("10.255.0.0/16"), Gateway: netip.MustParseAddr("10.255.0.1")}
	for _, err := range []error{
		k.EnsureNS(sbox),
		ov.EnsureNetwork(ingress),
		ov.EnsureEndpoint(ingress.ID, overlay.Endpoint{ID: "ingress-sbox", IP: netip.MustParseAddr("10.255.0.2"), Sandbox: sbox, IfName: "eth0"}),
		k.SetAddr(sbox, "eth0", netip.MustParsePrefix("10.255.0.5/32")), // a service VIP
		gw.Ensure(),
		gw.Attach(sbox, "eth1", "veth_ingress", netip.MustParseAddr("172.18.0.2")),
	} {
		if err != nil {
			panic(err)
		}
	}
	fmt.Print(k.Dump())
	// Output:
	// netns host
	//   mesh_gwbridge: mtu 1500 UP bridge address 02:42:ac:12:00:01 inet 172.18.0.1/16
	//   veth_ingress: mtu 1500 master mesh_gwbridge UP veth peer eth1 in /run/meshd/netns/ingress_sbox
	//   sysctl net/ipv4/conf/mesh_gwbridge/route_localnet=1
	//   sysctl net/ipv4/ip_forward=1
	// netns /run/meshd/netns/1-ingressnet
	//   br0: mtu 1450 UP bridge inet 10.255.0.1/16
	//   veth816c5b0: mtu 1450 master br0 UP veth peer eth0 in /run/meshd/netns/ingress_sbox
	//   vxlan0: mtu 1450 master br0 UP vxlan id 4096 local 192.168.0.10 dstport 4789 nolearning proxy
	//   sysctl net/bridge/bridge-nf-call-arptables=0
	//   sysctl net/bridge/bridge-nf-call-ip6tables=0
	//   sysctl net/bridge/bridge-nf-call-iptables=0
	// netns /run/meshd/netns/ingress_sbox
	//   eth0: mtu 1450 UP veth peer veth816c5b0 in /run/meshd/netns/1-ingressnet address 02:42:0a:ff:00:02 inet 10.255.0.2/16 inet 10.255.0.5/32
	//   eth1: mtu 1500 UP veth peer veth_ingress in host address 02:42:ac:12:00:02 inet 172.18.0.2/16
	//   route default via 172.18.0.1 dev eth1
}
