package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
)

// gatewayBridge is the bridge every node's namespaces reach the outside
// through, as network ls names it (Swarm's docker_gwbridge).
const gatewayBridge = "mesh_gwbridge"

// clusterView is what a manager says of the whole cluster.
type clusterView struct {
	Nodes    []api.Node
	Services []api.Service
	Tasks    []api.Task
}

// nodeView is what one node says of itself: its namespaces and the
// networks it has, inspected there (Containers are its own endpoints,
// Peers the nodes it tunnels to).
type nodeView struct {
	Info       api.Info
	Namespaces []api.Namespace
	Networks   []api.NetworkResource
}

// topologyFrom builds the topology the API shows: the nodes, each viewed
// node's namespaces with the addresses its endpoints have, the links the
// design names (br0 and vxlan0 in an overlay namespace, eth0 in a
// sandbox, a task's ethN per network in attach order then one on
// mesh_gwbridge), the veth pairs between them with the overlay's or the
// gateway's end left unnamed, a tunnel per overlay between every two
// viewed nodes that have its namespace, and the services.
//
// Interface indexes, the overlay and host ends of the veths, the FDB
// behind each tunnel and the VIPs programmed as addresses are the
// kernel's, not the API's: they are left out here, for each node's kernel
// snapshot to fill in when it is read.
func topologyFrom(cv clusterView, nvs []nodeView) graph.Topology {
	var t graph.Topology
	views := map[string]nodeView{}
	for _, nv := range nvs {
		views[nv.Info.NodeID] = nv
	}
	tasks := map[string]api.Task{} // by namespace name (hostname), current ones
	for _, tk := range cv.Tasks {
		if tk.Current() {
			tasks[tk.Hostname()] = tk
		}
	}
	for _, n := range cv.Nodes {
		gn := graph.Node{Name: n.Hostname, Addr: n.Addr}
		nv, viewed := views[n.ID]
		gn.Namespaces = append(gn.Namespaces, hostNamespace(nv))
		if viewed {
			for _, ns := range nv.Namespaces {
				gn.Namespaces = append(gn.Namespaces, namespaceFrom(ns, nv, tasks))
			}
			gn.Veths = vethsFrom(gn, nv, tasks)
		}
		t.Nodes = append(t.Nodes, gn)
	}
	t.Sort() // nodes by name first: a tunnel goes from the first to the second
	t.Tunnels = tunnelsFrom(t.Nodes, nvs)
	t.Services = servicesFrom(cv, t.Nodes, nvs)
	t.Sort()
	return t
}

// hostNamespace is the host's, with mesh_gwbridge when the node has one.
func hostNamespace(nv nodeView) graph.Namespace {
	ns := graph.Namespace{Name: "host", Kind: graph.KindHost}
	for _, r := range nv.Networks {
		if r.Name == gatewayBridge && len(r.IPAM.Config) > 0 {
			c := r.IPAM.Config[0]
			ns.Links = append(ns.Links, graph.Link{Name: gatewayBridge, Kind: graph.LinkBridge, Addrs: withPrefix(c.Gateway, c.Subnet)})
		}
	}
	return ns
}

// namespaceFrom is one namespace ns ls lists, with the links the design
// gives it and the addresses the API knows for them.
func namespaceFrom(ns api.Namespace, nv nodeView, tasks map[string]api.Task) graph.Namespace {
	g := graph.Namespace{Name: ns.Name, Kind: graph.Kind(ns.Kind), Owner: ns.Owner}
	switch g.Kind {
	case graph.KindOverlay:
		if r, ok := networkNamed(nv, ns.Owner); ok && len(r.IPAM.Config) > 0 {
			c := r.IPAM.Config[0]
			vni, _ := strconv.ParseUint(r.VNI(), 10, 32)
			g.Links = []graph.Link{
				{Name: "br0", Kind: graph.LinkBridge, Addrs: withPrefix(c.Gateway, c.Subnet)},
				{Name: "vxlan0", Kind: graph.LinkVXLAN, Master: "br0", VNI: uint32(vni)},
			}
		}
	case graph.KindIngress, graph.KindLB:
		key := "lb-" + ns.Owner
		if g.Kind == graph.KindIngress {
			key = api.IngressSandboxKey
		}
		if r, ok := networkNamed(nv, ns.Owner); ok {
			g.Links = append(g.Links, graph.Link{Name: "eth0", Kind: graph.LinkVeth, Addrs: addrsOf(r.Containers[key])})
		}
		if gw, ok := networkNamed(nv, gatewayBridge); ok && g.Kind == graph.KindIngress {
			g.Links = append(g.Links, graph.Link{Name: "eth1", Kind: graph.LinkVeth, Addrs: addrsOf(gw.Containers[api.IngressSandboxKey])})
		}
	case graph.KindTask:
	default:
		g.Kind = graph.KindTask // a sandbox ns ls could not name: drawn with the tasks
	}
	if tk, ok := tasks[ns.Name]; ok {
		for i, tn := range tk.Networks {
			g.Links = append(g.Links, graph.Link{Name: "eth" + strconv.Itoa(i), Kind: graph.LinkVeth, Addrs: withPrefix(tn.Addr, "")})
		}
		if gw, ok := networkNamed(nv, gatewayBridge); ok {
			if ep, ok := gw.Containers[tk.ContainerID()]; ok {
				g.Links = append(g.Links, graph.Link{Name: "eth" + strconv.Itoa(len(tk.Networks)), Kind: graph.LinkVeth, Addrs: addrsOf(ep)})
			}
		}
	}
	return g
}

// vethsFrom pairs each sandbox's links with the namespace at their other
// end: the overlay namespace of their network, or the host's bridge.
func vethsFrom(n graph.Node, nv nodeView, tasks map[string]api.Task) []graph.Veth {
	overlayOf := map[string]string{} // network name → its overlay namespace here
	for _, ns := range n.Namespaces {
		if ns.Kind == graph.KindOverlay {
			overlayOf[ns.Owner] = ns.Name
		}
	}
	var out []graph.Veth
	pair := func(ns, link, peerNS string) {
		if peerNS != "" && n.Namespace(ns).Link(link) != nil {
			out = append(out, graph.Veth{A: graph.End{Namespace: peerNS}, B: graph.End{Namespace: ns, Link: link}})
		}
	}
	for _, ns := range n.Namespaces {
		switch ns.Kind {
		case graph.KindIngress:
			pair(ns.Name, "eth0", overlayOf[ns.Owner])
			pair(ns.Name, "eth1", "host")
		case graph.KindLB:
			pair(ns.Name, "eth0", overlayOf[ns.Owner])
		case graph.KindTask:
			tk, ok := tasks[ns.Name]
			if !ok {
				continue
			}
			for i, tn := range tk.Networks {
				pair(ns.Name, "eth"+strconv.Itoa(i), overlayOf[tn.NetworkName])
			}
			pair(ns.Name, "eth"+strconv.Itoa(len(tk.Networks)), "host")
		}
	}
	return out
}

// tunnelsFrom joins, for each overlay network, every two nodes that have
// its namespace.
func tunnelsFrom(nodes []graph.Node, nvs []nodeView) []graph.Tunnel {
	var out []graph.Tunnel
	vnis := map[string]uint32{}
	for _, nv := range nvs {
		for _, r := range nv.Networks {
			if v, err := strconv.ParseUint(r.VNI(), 10, 32); err == nil {
				vnis[r.Name] = uint32(v)
			}
		}
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			for _, nsA := range a.Namespaces {
				if nsA.Kind != graph.KindOverlay || nsA.Owner == "" {
					continue
				}
				for _, nsB := range b.Namespaces {
					if nsB.Kind == graph.KindOverlay && nsB.Owner == nsA.Owner {
						out = append(out, graph.Tunnel{Network: nsA.Owner, VNI: vnis[nsA.Owner],
							A: graph.TunnelEnd{Node: a.Name, Namespace: nsA.Name}, B: graph.TunnelEnd{Node: b.Name, Namespace: nsB.Name}})
					}
				}
			}
		}
	}
	return out
}

// servicesFrom lists the services with their VIPs (by network name) and
// their current tasks whose namespace is in the topology.
func servicesFrom(cv clusterView, nodes []graph.Node, nvs []nodeView) []graph.Service {
	netNames := map[string]string{}
	for _, nv := range nvs {
		for _, r := range nv.Networks {
			netNames[r.ID] = r.Name
		}
	}
	nodeNames := map[string]string{}
	for _, n := range cv.Nodes {
		nodeNames[n.ID] = n.Hostname
	}
	var out []graph.Service
	for _, s := range cv.Services {
		gs := graph.Service{Name: s.Name}
		for _, p := range s.Endpoint.Ports {
			gs.Ports = append(gs.Ports, portsOf([]api.PortConfig{p}))
		}
		for _, v := range s.Endpoint.VirtualIPs {
			gs.VIPs = append(gs.VIPs, graph.VIP{Network: cmp.Or(netNames[v.NetworkID], v.NetworkID), Addr: v.Addr})
		}
		for _, tk := range cv.Tasks {
			if tk.ServiceID != s.ID || !tk.Current() {
				continue
			}
			ref := graph.TaskRef{Name: tk.Name(), Node: nodeNames[tk.NodeID], Namespace: tk.Hostname()}
			if hasNamespace(nodes, ref.Node, ref.Namespace) {
				gs.Tasks = append(gs.Tasks, ref)
			}
		}
		out = append(out, gs)
	}
	return out
}

func hasNamespace(nodes []graph.Node, node, ns string) bool {
	for i := range nodes {
		if nodes[i].Name == node {
			return nodes[i].Namespace(ns) != nil
		}
	}
	return false
}

func networkNamed(nv nodeView, name string) (api.NetworkResource, bool) {
	for _, r := range nv.Networks {
		if r.Name == name {
			return r, true
		}
	}
	return api.NetworkResource{}, false
}

// withPrefix is addr as a CIDR: with the subnet's length when addr has
// none; nothing for an empty or invalid address.
func withPrefix(addr, subnet string) []string {
	if p, err := netip.ParsePrefix(addr); err == nil {
		return []string{p.String()}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	if s, err := netip.ParsePrefix(subnet); err == nil {
		return []string{netip.PrefixFrom(a, s.Bits()).String()}
	}
	return []string{fmt.Sprintf("%s/%d", a, a.BitLen())}
}

func addrsOf(ep api.EndpointResource) []string { return withPrefix(ep.IPv4Address, "") }
