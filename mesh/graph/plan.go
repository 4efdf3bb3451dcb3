package graph

import (
	"fmt"
	"strings"
)

// plan is what the dot and mermaid renderers share: an identifier for
// every box and the edges between them, resolved once from the topology.
// Identifiers are made of indexes (n0_s1_l2: node 0, namespace 1, link 2),
// so they are valid in both languages whatever the names hold.
type plan struct {
	t     *Topology
	edges []edge
}

type edgeKind int

const (
	edgeVeth    edgeKind = iota // a veth pair
	edgePort                    // a link and the bridge it is a port of
	edgeTunnel                  // VXLAN between two nodes
	edgeService                 // a service and one of its tasks
)

// edge joins two boxes. The first is the one nearer the host, so that a
// layout going down follows the packet's way in.
type edge struct {
	kind     edgeKind
	from, to string
	label    string
	id       string // stable, for the SVG's element ids: tunnel:ovnet:node1:node2
}

func nsID(ni, si int) string       { return fmt.Sprintf("n%d_s%d", ni, si) }
func linkID(ni, si, li int) string { return fmt.Sprintf("n%d_s%d_l%d", ni, si, li) }
func serviceID(i int) string       { return fmt.Sprintf("svc%d", i) }

// anchorID is the box standing for a namespace with no link to draw.
func anchorID(ni, si int) string { return nsID(ni, si) + "_x" }

func newPlan(t *Topology) (*plan, error) {
	p := &plan{t: t}
	for ni := range t.Nodes {
		if err := p.nodeEdges(ni); err != nil {
			return nil, err
		}
	}
	for _, tu := range t.Tunnels {
		a, err := p.tunnelEnd(tu.A)
		if err != nil {
			return nil, fmt.Errorf("tunnel %s VNI %d: %w", tu.Network, tu.VNI, err)
		}
		b, err := p.tunnelEnd(tu.B)
		if err != nil {
			return nil, fmt.Errorf("tunnel %s VNI %d: %w", tu.Network, tu.VNI, err)
		}
		p.edges = append(p.edges, edge{kind: edgeTunnel, from: a, to: b, label: fmt.Sprintf("VNI %d", tu.VNI),
			id: fmt.Sprintf("tunnel:%s:%s:%s", tu.Network, tu.A.Node, tu.B.Node)})
	}
	for i, s := range t.Services {
		for _, tr := range s.Tasks {
			ni := p.node(tr.Node)
			if ni < 0 {
				return nil, fmt.Errorf("service %s: task %s on unknown node %q", s.Name, tr.Name, tr.Node)
			}
			to, err := p.end(ni, End{Namespace: tr.Namespace})
			if err != nil {
				return nil, fmt.Errorf("service %s: task %s: %w", s.Name, tr.Name, err)
			}
			p.edges = append(p.edges, edge{kind: edgeService, from: serviceID(i), to: to, id: "task:" + tr.Name})
		}
	}
	return p, nil
}

// nodeEdges adds a node's bridge ports and veth pairs.
func (p *plan) nodeEdges(ni int) error {
	n := &p.t.Nodes[ni]
	for si, ns := range n.Namespaces {
		for li, l := range ns.Links {
			if l.Master == "" {
				continue
			}
			bi := linkIndex(&ns, l.Master)
			if bi < 0 {
				return fmt.Errorf("%s: %s: %s: no bridge %q", n.Name, ns.Name, l.Name, l.Master)
			}
			p.edges = append(p.edges, edge{kind: edgePort, from: linkID(ni, si, bi), to: linkID(ni, si, li),
				id: fmt.Sprintf("port:%s:%s:%s", n.Name, ns.Name, l.Name)})
		}
	}
	for _, v := range n.Veths {
		a, b := v.A, v.B
		if p.kindRank(ni, b.Namespace) < p.kindRank(ni, a.Namespace) {
			a, b = b, a
		}
		from, err := p.end(ni, a)
		if err != nil {
			return err
		}
		to, err := p.end(ni, b)
		if err != nil {
			return err
		}
		p.edges = append(p.edges, edge{kind: edgeVeth, from: from, to: to,
			id: fmt.Sprintf("veth:%s:%s:%s", n.Name, endString(a), endString(b))})
	}
	return nil
}

func endString(e End) string {
	if e.Link == "" {
		return e.Namespace
	}
	return e.Namespace + "/" + e.Link
}

func (p *plan) node(name string) int {
	for i := range p.t.Nodes {
		if p.t.Nodes[i].Name == name {
			return i
		}
	}
	return -1
}

func (p *plan) namespace(ni int, name string) int {
	for i := range p.t.Nodes[ni].Namespaces {
		if p.t.Nodes[ni].Namespaces[i].Name == name {
			return i
		}
	}
	return -1
}

func (p *plan) kindRank(ni int, ns string) int {
	if si := p.namespace(ni, ns); si >= 0 {
		return kindOrder[p.t.Nodes[ni].Namespaces[si].Kind]
	}
	return len(kindOrder)
}

func linkIndex(ns *Namespace, name string) int {
	for i := range ns.Links {
		if ns.Links[i].Name == name {
			return i
		}
	}
	return -1
}

// end is the box an End is drawn at: its link; for an end not known by
// name, the namespace's first bridge, else its first link, else its anchor.
func (p *plan) end(ni int, e End) (string, error) {
	n := &p.t.Nodes[ni]
	si := p.namespace(ni, e.Namespace)
	if si < 0 {
		return "", fmt.Errorf("%s: no namespace %q", n.Name, e.Namespace)
	}
	ns := &n.Namespaces[si]
	if e.Link != "" {
		li := linkIndex(ns, e.Link)
		if li < 0 {
			return "", fmt.Errorf("%s: %s: no link %q", n.Name, ns.Name, e.Link)
		}
		return linkID(ni, si, li), nil
	}
	return p.fallback(ni, si, LinkBridge), nil
}

// fallback is a namespace's first link of kind k, else its first link,
// else its anchor.
func (p *plan) fallback(ni, si int, k LinkKind) string {
	ns := &p.t.Nodes[ni].Namespaces[si]
	for li, l := range ns.Links {
		if l.Kind == k {
			return linkID(ni, si, li)
		}
	}
	if len(ns.Links) > 0 {
		return linkID(ni, si, 0)
	}
	return anchorID(ni, si)
}

// tunnelEnd is a tunnel's box: the vxlan link of the overlay namespace.
func (p *plan) tunnelEnd(e TunnelEnd) (string, error) {
	ni := p.node(e.Node)
	if ni < 0 {
		return "", fmt.Errorf("no node %q", e.Node)
	}
	si := p.namespace(ni, e.Namespace)
	if si < 0 {
		return "", fmt.Errorf("%s: no namespace %q", e.Node, e.Namespace)
	}
	return p.fallback(ni, si, LinkVXLAN), nil
}

// linkLines are a link box's lines: its name as ip a prints it, its VNI,
// its addresses.
func (p *plan) linkLines(ni, si, li int) []string {
	l := &p.t.Nodes[ni].Namespaces[si].Links[li]
	lines := []string{l.IPName()}
	if l.VNI != 0 {
		lines[0] += fmt.Sprintf(" (VNI %d)", l.VNI)
	}
	return append(lines, l.Addrs...)
}

// serviceLines are a service box's lines.
func serviceLines(s Service) []string {
	lines := []string{s.Name}
	for _, v := range s.VIPs {
		lines = append(lines, "VIP "+v.Addr+" ("+v.Network+")")
	}
	if len(s.Ports) > 0 {
		lines = append(lines, strings.Join(s.Ports, ", "))
	}
	// The tasks are named here rather than joined by edges: in dot those
	// cross every node and reorder the nodes' boxes.
	tasks := make([]string, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		tasks = append(tasks, t.Name+" on "+t.Node)
	}
	if len(tasks) > 0 {
		lines = append(lines, strings.Join(tasks, ", "))
	}
	return lines
}

// nodeTitle is a node's box label.
func nodeTitle(n Node) string {
	if n.Addr == "" {
		return n.Name
	}
	return n.Name + " " + n.Addr
}
