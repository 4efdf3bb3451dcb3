package graph

import (
	"cmp"
	"slices"
	"strconv"
)

// Kind is what a namespace is, as meshctl ns ls names it, plus the host's.
type Kind string

// The namespace kinds, in the order a node's box stacks them (the
// packet's way in: host, ingress sandbox, load balancers, overlays, tasks).
const (
	KindHost    Kind = "host"
	KindIngress Kind = "ingress" // ingress_sbox
	KindLB      Kind = "lb"      // lb_<netid[:9]>
	KindOverlay Kind = "overlay" // 1-<netid[:10]>
	KindTask    Kind = "task"    // a task's or container's sandbox, named by its hostname
)

var kindOrder = map[Kind]int{KindHost: 0, KindIngress: 1, KindLB: 2, KindOverlay: 3, KindTask: 4}

// LinkKind is a link's type as ip -d link names it.
type LinkKind string

// The link kinds the graph draws differently; any other is drawn plain.
const (
	LinkVeth   LinkKind = "veth"
	LinkBridge LinkKind = "bridge"
	LinkVXLAN  LinkKind = "vxlan"
)

// Topology is the cluster as the tutorials draw it: its nodes with their
// namespaces and links, the VXLAN tunnels between the nodes and the
// services. It is plain data: meshctl fills it from the API and each
// node's kernel snapshot, the renderers only read it, in the order it is
// in ([Topology.Sort] gives the canonical one).
type Topology struct {
	Nodes    []Node
	Tunnels  []Tunnel
	Services []Service
}

// Node is one machine of the cluster.
type Node struct {
	Name string // node1
	Addr string // underlay address, the VTEP: 192.168.33.10
	// Namespaces are the node's network namespaces, the host's among
	// them (Kind host, named "host").
	Namespaces []Namespace
	// Veths are the node's veth pairs; both ends are on this node.
	Veths []Veth
}

// Namespace is one network namespace of a node.
type Namespace struct {
	Name  string // as ns ls prints it: ingress_sbox, 1-kq0b2hbd7c, lb_kq0b2hbd7, a task's hostname; "host"
	Kind  Kind
	Owner string // the network (ovnet) or task (www.1) it belongs to; empty for the host and ingress_sbox
	Links []Link
}

// Link is one network interface in a namespace.
type Link struct {
	Name string // eth0, br0, vxlan0, mesh_gwbridge
	Kind LinkKind
	// Index is the ifindex in its namespace; 0 when not known.
	Index int
	// PeerIndex is a veth's peer's ifindex, which ip a prints after the
	// name (eth0@if12: the peer is index 12, in whichever namespace it
	// is); 0 for none or not known.
	PeerIndex int
	// Master is the bridge (in the same namespace) the link is a port
	// of; empty for none.
	Master string
	VNI    uint32   // a vxlan link's VXLAN ID; 0 otherwise
	Addrs  []string // CIDRs, as ip a lists them
}

// Veth is one veth pair: two ends in two namespaces of one node.
type Veth struct {
	A, B End
}

// End names a link by namespace and link name. An empty Link stands for
// the namespace as a whole (a service's task): the edge goes to the
// namespace's bridge, else its first link.
type End struct {
	Namespace string
	Link      string
}

// Tunnel is the VXLAN tunnel of one overlay network between two nodes:
// from the vxlan link in A's overlay namespace to the one in B's.
type Tunnel struct {
	Network string // ovnet
	VNI     uint32
	A, B    TunnelEnd
}

// TunnelEnd is a tunnel's end: a node and its overlay namespace, or the
// node's host namespace when its kernel was not read (the tunnel is known
// from the other end's forwarding entries only).
type TunnelEnd struct {
	Node      string
	Namespace string // 1-<netid[:10]>, or "host"
}

// Service is a swarm service: its VIPs, its published ports and where its
// tasks are.
type Service struct {
	Name  string
	Ports []string // published, as docker service ls prints them: *:8888->80/tcp
	VIPs  []VIP
	Tasks []TaskRef
}

// VIP is a service's virtual IP on one network.
type VIP struct {
	Network string
	Addr    string // CIDR
}

// TaskRef points at a task's namespace.
type TaskRef struct {
	Name      string // www.1
	Node      string
	Namespace string
}

// Sort puts the topology in its canonical order, so that the same cluster
// renders byte for byte the same: nodes by name, namespaces by kind then
// name, links, veths, tunnels and services by name.
func (t *Topology) Sort() {
	slices.SortFunc(t.Nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	for i := range t.Nodes {
		n := &t.Nodes[i]
		slices.SortFunc(n.Namespaces, func(a, b Namespace) int {
			return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), cmp.Compare(a.Name, b.Name))
		})
		for j := range n.Namespaces {
			slices.SortFunc(n.Namespaces[j].Links, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
		}
		slices.SortFunc(n.Veths, func(a, b Veth) int {
			return cmp.Or(compareEnd(a.A, b.A), compareEnd(a.B, b.B))
		})
	}
	slices.SortFunc(t.Tunnels, func(a, b Tunnel) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.A.Node, b.A.Node), cmp.Compare(a.B.Node, b.B.Node))
	})
	slices.SortFunc(t.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
	for i := range t.Services {
		slices.SortFunc(t.Services[i].Tasks, func(a, b TaskRef) int { return cmp.Compare(a.Name, b.Name) })
	}
}

func compareEnd(a, b End) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Link, b.Link))
}

// Namespace returns the namespace called name, or nil.
func (n *Node) Namespace(name string) *Namespace {
	for i := range n.Namespaces {
		if n.Namespaces[i].Name == name {
			return &n.Namespaces[i]
		}
	}
	return nil
}

// Link returns the link called name, or nil.
func (ns *Namespace) Link(name string) *Link {
	for i := range ns.Links {
		if ns.Links[i].Name == name {
			return &ns.Links[i]
		}
	}
	return nil
}

// Title is the namespace as a box names it: its name, and its owner when
// the name does not say it (a task's hostname, an overlay's ID).
func (ns *Namespace) Title() string {
	if ns.Owner == "" || ns.Kind == KindIngress || ns.Kind == KindHost {
		return ns.Name
	}
	return ns.Name + " (" + ns.Owner + ")"
}

// IPName is the link's name as ip a prints it: a veth with a known peer
// gets "@ifN", N the peer's ifindex.
func (l Link) IPName() string {
	if l.PeerIndex > 0 {
		return l.Name + "@if" + strconv.Itoa(l.PeerIndex)
	}
	return l.Name
}
