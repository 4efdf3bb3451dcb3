package graph

import "fmt"

// The address plan of the fixture is the tutorials' lab: nodes at
// 192.168.33.10-12, ingress 10.255.0.0/16 (VNI 4096), ovnet 10.0.0.0/24
// (VNI 4097), mesh_gwbridge 172.18.0.0/16. www has two tasks (node1,
// node2) publishing 8888:80; db one on node3. Interface indexes are as a
// kernel snapshot gives them: each veth end knows its peer's, the host's
// eth0 too, whose peer is in the lab's underlay namespace.

const (
	ingressNS = "1-ing0000000"
	ovnetNS   = "1-ovn0000000"
	ovnetLB   = "lb_ovn000000"
)

type fixtureTask struct {
	name, host, ingress, ovnet, gw string // task name, its namespace (hostname), its addresses
}

// fixtureNode is node i (1-based) with its tasks, as a snapshot shows it.
func fixtureNode(i int, tasks []fixtureTask) Node {
	name := fmt.Sprintf("node%d", i)
	host := Namespace{Name: "host", Kind: KindHost, Links: []Link{
		{Name: "eth0", Index: 2, Addrs: []string{fmt.Sprintf("192.168.33.%d/24", 9+i)}},
		{Name: "mesh_gwbridge", Kind: LinkBridge, Index: 3, Addrs: []string{"172.18.0.1/16"}},
		{Name: "veth0a1b2c3", Kind: LinkVeth, Index: 6, Master: "mesh_gwbridge"},
	}}
	sbox := Namespace{Name: "ingress_sbox", Kind: KindIngress, Links: []Link{
		{Name: "eth0", Kind: LinkVeth, Index: 9, Addrs: []string{fmt.Sprintf("10.255.0.%d/16", 1+i), "10.255.0.5/32"}},
		{Name: "eth1", Kind: LinkVeth, Index: 5, Addrs: []string{"172.18.0.2/16"}},
	}}
	ing := Namespace{Name: ingressNS, Kind: KindOverlay, Owner: "ingress", Links: []Link{
		{Name: "br0", Kind: LinkBridge, Index: 2, Addrs: []string{"10.255.0.1/16"}},
		{Name: "vxlan0", Kind: LinkVXLAN, Index: 4, Master: "br0", VNI: 4096},
		{Name: "veth0", Kind: LinkVeth, Index: 8, Master: "br0"},
	}}
	lb := Namespace{Name: ovnetLB, Kind: KindLB, Owner: "ovnet", Links: []Link{
		{Name: "eth0", Kind: LinkVeth, Index: 11, Addrs: []string{fmt.Sprintf("10.0.0.%d/24", 9+i), "10.0.0.2/32", "10.0.0.6/32"}},
	}}
	ov := Namespace{Name: ovnetNS, Kind: KindOverlay, Owner: "ovnet", Links: []Link{
		{Name: "br0", Kind: LinkBridge, Index: 2, Addrs: []string{"10.0.0.1/24"}},
		{Name: "vxlan0", Kind: LinkVXLAN, Index: 4, Master: "br0", VNI: 4097},
		{Name: "veth0", Kind: LinkVeth, Index: 10, Master: "br0"},
	}}
	n := Node{Name: name, Addr: fmt.Sprintf("192.168.33.%d", 9+i),
		Veths: []Veth{
			{A: End{"host", "veth0a1b2c3"}, B: End{"ingress_sbox", "eth1"}},
			{A: End{ingressNS, "veth0"}, B: End{"ingress_sbox", "eth0"}},
			{A: End{ovnetNS, "veth0"}, B: End{ovnetLB, "eth0"}},
		}}
	for j, t := range tasks {
		tn := Namespace{Name: t.host, Kind: KindTask, Owner: t.name}
		idx := 20 + 3*j
		if t.ingress != "" {
			vi := fmt.Sprintf("veth%d", j+1)
			ing.Links = append(ing.Links, Link{Name: vi, Kind: LinkVeth, Index: idx, Master: "br0"})
			tn.Links = append(tn.Links, Link{Name: "eth0", Kind: LinkVeth, Index: idx + 1, Addrs: []string{t.ingress}})
			n.Veths = append(n.Veths, Veth{A: End{ingressNS, vi}, B: End{t.host, "eth0"}})
		}
		vo := fmt.Sprintf("veth%d", j+1)
		ov.Links = append(ov.Links, Link{Name: vo, Kind: LinkVeth, Index: idx + 2, Master: "br0"})
		eth := fmt.Sprintf("eth%d", len(tn.Links))
		tn.Links = append(tn.Links, Link{Name: eth, Kind: LinkVeth, Index: idx + 3, Addrs: []string{t.ovnet}})
		n.Veths = append(n.Veths, Veth{A: End{ovnetNS, vo}, B: End{t.host, eth}})
		hv := fmt.Sprintf("veth%dgw", j+1)
		host.Links = append(host.Links, Link{Name: hv, Kind: LinkVeth, Index: 30 + j, Master: "mesh_gwbridge"})
		gweth := fmt.Sprintf("eth%d", len(tn.Links))
		tn.Links = append(tn.Links, Link{Name: gweth, Kind: LinkVeth, Index: idx + 4, Addrs: []string{t.gw}})
		n.Veths = append(n.Veths, Veth{A: End{"host", hv}, B: End{t.host, gweth}})
		n.Namespaces = append(n.Namespaces, tn)
	}
	n.Namespaces = append([]Namespace{host, sbox, lb, ing, ov}, n.Namespaces...)
	// Each veth end carries its peer's index, as the snapshot's links do.
	for _, v := range n.Veths {
		a, b := n.Namespace(v.A.Namespace).Link(v.A.Link), n.Namespace(v.B.Namespace).Link(v.B.Link)
		a.PeerIndex, b.PeerIndex = b.Index, a.Index
	}
	// The underlay's end is in the lab's namespace, not drawn.
	n.Namespaces[0].Links[0].Kind, n.Namespaces[0].Links[0].PeerIndex = LinkVeth, 40+i
	return n
}

// fixture is the hand-built 3-node topology the goldens render.
func fixture() Topology {
	t := Topology{
		Nodes: []Node{
			fixtureNode(1, []fixtureTask{{"www.1", "a1b2c3d4e5f6", "10.255.0.7/16", "10.0.0.3/24", "172.18.0.3/16"}}),
			fixtureNode(2, []fixtureTask{{"www.2", "0f1e2d3c4b5a", "10.255.0.8/16", "10.0.0.4/24", "172.18.0.3/16"}}),
			fixtureNode(3, []fixtureTask{{"db.1", "99aa88bb77cc", "", "10.0.0.7/24", "172.18.0.3/16"}}),
		},
		Services: []Service{
			{Name: "www", Ports: []string{"*:8888->80/tcp"},
				VIPs:  []VIP{{"ingress", "10.255.0.5/16"}, {"ovnet", "10.0.0.2/24"}},
				Tasks: []TaskRef{{"www.1", "node1", "a1b2c3d4e5f6"}, {"www.2", "node2", "0f1e2d3c4b5a"}}},
			{Name: "db", VIPs: []VIP{{"ovnet", "10.0.0.6/24"}},
				Tasks: []TaskRef{{"db.1", "node3", "99aa88bb77cc"}}},
		},
	}
	for _, net := range []struct {
		name, ns string
		vni      uint32
	}{{"ingress", ingressNS, 4096}, {"ovnet", ovnetNS, 4097}} {
		for a := 1; a <= 3; a++ {
			for b := a + 1; b <= 3; b++ {
				t.Tunnels = append(t.Tunnels, Tunnel{Network: net.name, VNI: net.vni,
					A: TunnelEnd{fmt.Sprintf("node%d", a), net.ns}, B: TunnelEnd{fmt.Sprintf("node%d", b), net.ns}})
			}
		}
	}
	t.Sort()
	return t
}
