package main

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
)

// clusterView is what a manager says of the whole cluster: the nodes, the
// networks (to name the VIPs'), the services and their tasks.
type clusterView struct {
	Nodes    []api.Node
	Networks []api.NetworkResource
	Services []api.Service
	Tasks    []api.Task
}

// topologyFrom builds the topology from the nodes' kernel snapshots, and
// the services from the cluster view. Each node whose snapshot is there is
// drawn as its kernel holds it: every namespace, every link with its
// ifindex, its peer's, its bridge and its addresses, the veth pairs by
// their peer ifindex and namespace, and a VXLAN tunnel to each node that
// a forwarding entry of its vxlan devices sends to. A node without a
// snapshot is an empty host box, which the others' tunnels end at.
func topologyFrom(cv clusterView, snaps []api.KernelSnapshot) graph.Topology {
	var t graph.Topology
	byID := map[string]*api.KernelSnapshot{}
	for i := range snaps {
		byID[snaps[i].NodeID] = &snaps[i]
	}
	for _, n := range cv.Nodes {
		gn := graph.Node{Name: n.Hostname, Addr: n.Addr}
		if s, ok := byID[n.ID]; ok {
			gn.Namespaces = namespacesFrom(s, n.Addr)
			gn.Veths = vethsFrom(gn, s)
		} else {
			gn.Namespaces = []graph.Namespace{{Name: api.HostNamespace, Kind: graph.KindHost}}
		}
		t.Nodes = append(t.Nodes, gn)
	}
	t.Tunnels = tunnelsFrom(cv.Nodes, snaps)
	t.Services = servicesFrom(cv, t.Nodes)
	t.Sort()
	return t
}

// namespacesFrom is a snapshot's namespaces with their links, loopbacks
// left out. Of the host's links only the mesh's are drawn: the veths
// whose peer is in a namespace meshd made, the bridges they are ports of
// (mesh_gwbridge) and the underlay link holding the node's address; a
// machine's other links are not the mesh's business.
func namespacesFrom(s *api.KernelSnapshot, addr string) []graph.Namespace {
	var out []graph.Namespace
	for _, ns := range s.Namespaces {
		g := graph.Namespace{Name: ns.Name, Kind: graph.Kind(ns.Kind), Owner: ns.Owner}
		switch g.Kind {
		case graph.KindHost:
			g.Owner = ""
		case graph.KindIngress, graph.KindLB, graph.KindOverlay, graph.KindTask:
		default:
			g.Kind = graph.KindTask // a sandbox ns ls could not name: drawn with the tasks
		}
		keep := func(api.KernelLink) bool { return true }
		if g.Kind == graph.KindHost {
			keep = hostLinkFilter(ns, addr)
		}
		for _, l := range ns.Links {
			if l.Name == "lo" || !keep(l) {
				continue
			}
			gl := graph.Link{Name: l.Name, Kind: graph.LinkKind(l.Kind), Index: l.Index, PeerIndex: l.PeerIndex,
				Master: l.Master, VNI: l.VNI}
			for _, a := range l.Addrs {
				gl.Addrs = append(gl.Addrs, a.String())
			}
			g.Links = append(g.Links, gl)
		}
		out = append(out, g)
	}
	return out
}

// hostLinkFilter says which of the host namespace's links are the mesh's
// (see namespacesFrom).
func hostLinkFilter(ns api.NetnsState, addr string) func(api.KernelLink) bool {
	meshPeer := func(l api.KernelLink) bool {
		return l.Kind == "veth" && l.PeerNetns != "" && l.PeerNetns != api.HostNamespace
	}
	bridges := map[string]bool{}
	for _, l := range ns.Links {
		if meshPeer(l) && l.Master != "" {
			bridges[l.Master] = true
		}
	}
	underlay, _ := netip.ParseAddr(addr)
	return func(l api.KernelLink) bool {
		return meshPeer(l) || bridges[l.Name] || slices.ContainsFunc(l.Addrs, func(p netip.Prefix) bool { return p.Addr() == underlay })
	}
}

// vethsFrom pairs each drawn veth with its peer: the link of that index in
// the namespace the snapshot names, each pair once, the lesser end
// first.
func vethsFrom(n graph.Node, s *api.KernelSnapshot) []graph.Veth {
	var out []graph.Veth
	seen := map[graph.End]bool{}
	for _, ns := range n.Namespaces {
		kns := s.Netns(ns.Name)
		for _, l := range ns.Links {
			kl := kernelLink(kns, func(k api.KernelLink) bool { return k.Name == l.Name })
			if kl == nil || kl.Kind != "veth" || kl.PeerNetns == "" {
				continue
			}
			peer := kernelLink(s.Netns(kl.PeerNetns), func(k api.KernelLink) bool { return k.Index == kl.PeerIndex })
			if pns := n.Namespace(kl.PeerNetns); peer == nil || pns == nil || pns.Link(peer.Name) == nil {
				continue // its peer is not drawn: truncated, or moved since
			}
			a, b := graph.End{Namespace: ns.Name, Link: l.Name}, graph.End{Namespace: kl.PeerNetns, Link: peer.Name}
			if seen[a] || seen[b] {
				continue
			}
			seen[a], seen[b] = true, true
			if cmp.Or(cmp.Compare(b.Namespace, a.Namespace), cmp.Compare(b.Link, a.Link)) < 0 {
				a, b = b, a
			}
			out = append(out, graph.Veth{A: a, B: b})
		}
	}
	return out
}

// kernelLink is the first of ns's links that match says, or nil (nil ns
// too).
func kernelLink(ns *api.NetnsState, match func(api.KernelLink) bool) *api.KernelLink {
	if ns == nil {
		return nil
	}
	for i := range ns.Links {
		if match(ns.Links[i]) {
			return &ns.Links[i]
		}
	}
	return nil
}

// tunnelsFrom is one tunnel per network and pair of nodes that a vxlan
// device's forwarding entry joins: the entry's destination VTEP is the
// node with that underlay address. Entries for an address no node has
// (a node gone from the cluster) draw nothing.
func tunnelsFrom(nodes []api.Node, snaps []api.KernelSnapshot) []graph.Tunnel {
	byAddr, byID := map[netip.Addr]string{}, map[string]string{}
	for _, n := range nodes {
		if a, err := netip.ParseAddr(n.Addr); err == nil {
			byAddr[a] = n.Hostname
		}
		byID[n.ID] = n.Hostname
	}
	byName := map[string]*api.KernelSnapshot{}
	for i := range snaps {
		byName[byID[snaps[i].NodeID]] = &snaps[i]
	}
	var out []graph.Tunnel
	seen := map[graph.Tunnel]bool{}
	for _, s := range snaps {
		self := byID[s.NodeID]
		for _, ns := range s.Namespaces {
			for _, l := range ns.Links {
				if l.Kind != "vxlan" {
					continue
				}
				for _, e := range ns.FDB {
					peer, ok := byAddr[e.Dst]
					if e.Dev != l.Name || !ok || peer == self {
						continue
					}
					tu := graph.Tunnel{Network: cmp.Or(ns.Owner, ns.Name), VNI: l.VNI,
						A: graph.TunnelEnd{Node: self, Namespace: ns.Name},
						B: graph.TunnelEnd{Node: peer, Namespace: overlayWithVNI(byName[peer], l.VNI)}}
					if tu.B.Node < tu.A.Node {
						tu.A, tu.B = tu.B, tu.A
					}
					if !seen[tu] {
						seen[tu] = true
						out = append(out, tu)
					}
				}
			}
		}
	}
	return out
}

// overlayWithVNI is the namespace of s holding a vxlan device with vni;
// the host's when s is nil (the node's kernel was not read) or has none.
func overlayWithVNI(s *api.KernelSnapshot, vni uint32) string {
	if s != nil {
		for _, ns := range s.Namespaces {
			if kernelLink(&ns, func(l api.KernelLink) bool { return l.Kind == "vxlan" && l.VNI == vni }) != nil {
				return ns.Name
			}
		}
	}
	return api.HostNamespace
}

// servicesFrom lists the services with their VIPs (by network name) and
// their current tasks whose namespace is in the topology.
func servicesFrom(cv clusterView, nodes []graph.Node) []graph.Service {
	netNames := map[string]string{}
	for _, r := range cv.Networks {
		netNames[r.ID] = r.Name
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
