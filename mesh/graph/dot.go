package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Colours per namespace kind and link kind, as the tutorials' pictures
// tell them apart: host grey, ingress orange, load balancers yellow,
// overlays blue, tasks green.
var (
	kindFill = map[Kind]string{
		KindHost: "#f0f0f0", KindIngress: "#fde0c5", KindLB: "#fff4b8", KindOverlay: "#dce9f7", KindTask: "#def3de",
	}
	linkFill = map[LinkKind]string{LinkBridge: "#9ecae1", LinkVXLAN: "#fdae6b"}
)

// DOT writes the topology as Graphviz source: a cluster per node, in it a
// cluster per namespace holding a box per link; veth pairs and bridge
// ports as solid edges, VXLAN tunnels as dashed ones labelled with their
// VNI, services as notes naming their VIPs, ports and tasks. Every cluster
// and edge has an id (node:node1, ns:node1:ingress_sbox,
// tunnel:ovnet:node1:node2, …), which dot -Tsvg keeps.
func DOT(w io.Writer, t Topology) error {
	p, err := newPlan(&t)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "graph mesh {")
	fmt.Fprintln(bw, `  graph [fontname="Helvetica", fontsize=12, newrank=true, nodesep=0.2, ranksep=0.35, labeljust=l];`)
	fmt.Fprintln(bw, `  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=10, margin="0.08,0.03"];`)
	fmt.Fprintln(bw, `  edge [fontname="Helvetica", fontsize=9];`)
	for ni, n := range t.Nodes {
		fmt.Fprintf(bw, "  subgraph cluster_n%d {\n", ni)
		fmt.Fprintf(bw, "    id=%s; class=\"node-box\"; label=%s; style=\"rounded,bold\"; color=\"#555555\";\n",
			dotQuote("node:"+n.Name), dotQuote(nodeTitle(n)))
		for si := range n.Namespaces {
			dotNamespace(bw, p, ni, si)
		}
		fmt.Fprintln(bw, "  }")
	}
	if len(t.Services) > 0 {
		fmt.Fprintln(bw, "  subgraph cluster_services {")
		fmt.Fprintln(bw, `    id="services"; class="services-box"; label="services"; style="rounded,dashed"; color="#888888";`)
		for i, s := range t.Services {
			fmt.Fprintf(bw, "    %s [id=%s, class=\"service\", shape=note, style=filled, fillcolor=\"#f3e6f7\", label=%s];\n",
				serviceID(i), dotQuote("service:"+s.Name), dotQuote(strings.Join(serviceLines(s), "\n")))
		}
		fmt.Fprintln(bw, "  }")
	}
	for _, e := range p.edges {
		if e.kind == edgeService {
			continue // the service's box names its tasks (see serviceLines)
		}
		fmt.Fprintf(bw, "  %s -- %s [id=%s%s];\n", e.from, e.to, dotQuote(e.id), dotEdgeStyle(e))
	}
	for ni := range t.Nodes {
		for _, e := range dotLevels(p, ni) {
			fmt.Fprintf(bw, "  %s -- %s [style=invis];\n", e[0], e[1])
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

func dotNamespace(bw *bufio.Writer, p *plan, ni, si int) {
	n := &p.t.Nodes[ni]
	ns := &n.Namespaces[si]
	fmt.Fprintf(bw, "    subgraph cluster_n%d_s%d {\n", ni, si)
	fmt.Fprintf(bw, "      id=%s; class=%s; label=%s; style=\"rounded,filled\"; fillcolor=%s; color=\"#999999\";\n",
		dotQuote("ns:"+n.Name+":"+ns.Name), dotQuote("ns-box ns-"+string(ns.Kind)), dotQuote(ns.Title()), dotQuote(kindFill[ns.Kind]))
	if len(ns.Links) == 0 {
		fmt.Fprintf(bw, "      %s [label=\"\", shape=point, style=invis];\n", anchorID(ni, si))
	}
	for li, l := range ns.Links {
		fill := "white"
		if c, ok := linkFill[l.Kind]; ok {
			fill = c
		}
		fmt.Fprintf(bw, "      %s [id=%s, class=\"link\", fillcolor=%s, label=%s];\n", linkID(ni, si, li),
			dotQuote("link:"+n.Name+":"+ns.Name+":"+l.Name), dotQuote(fill), dotQuote(strings.Join(p.linkLines(ni, si, li), "\n")))
	}
	fmt.Fprintln(bw, "    }")
}

// dotLevels are invisible edges that stack a node's namespaces by kind,
// host on top and tasks at the bottom: each box of one kind's namespaces
// above the first box of the next kind's. Without them dot puts most
// namespaces side by side and a node grows as wide as a screen.
func dotLevels(p *plan, ni int) [][2]string {
	n := &p.t.Nodes[ni]
	var out [][2]string
	var above []string // every box of the last kind seen
	var kind Kind
	for si := range n.Namespaces {
		ns := &n.Namespaces[si]
		if ns.Kind != kind && len(above) > 0 {
			first := p.fallback(ni, si, LinkBridge)
			for _, a := range above {
				out = append(out, [2]string{a, first})
			}
			above = nil
		}
		kind = ns.Kind
		if len(ns.Links) == 0 {
			above = append(above, anchorID(ni, si))
		}
		for li := range ns.Links {
			above = append(above, linkID(ni, si, li))
		}
	}
	return append(out, dotTunnelRows(p, ni)...)
}

// dotTunnelRows puts each overlay's vxlan link in a row of its own under
// the namespace's other ports, the overlays' in the order of their
// namespaces, so that the tunnels of two networks do not run along the
// same line with their labels on top of each other.
func dotTunnelRows(p *plan, ni int) [][2]string {
	n := &p.t.Nodes[ni]
	var out [][2]string
	prev := ""
	for si := range n.Namespaces {
		ns := &n.Namespaces[si]
		if ns.Kind != KindOverlay {
			continue
		}
		vi := -1
		for li, l := range ns.Links {
			if l.Kind == LinkVXLAN {
				vi = li
			}
		}
		if vi < 0 {
			continue
		}
		vx := linkID(ni, si, vi)
		for li, l := range ns.Links {
			if li != vi && l.Kind != LinkBridge {
				out = append(out, [2]string{linkID(ni, si, li), vx})
			}
		}
		if prev != "" {
			out = append(out, [2]string{prev, vx})
		}
		prev = vx
	}
	return out
}

func dotEdgeStyle(e edge) string {
	switch e.kind {
	case edgePort:
		return `, class="port", color="#4a7fb0", penwidth=2`
	case edgeTunnel:
		// No constraint: tunnels run across nodes and would pull the
		// nodes' boxes out of their row.
		return fmt.Sprintf(`, class="tunnel", style=dashed, color="#d9480f", fontcolor="#d9480f", penwidth=1.5, constraint=false, label=%s`, dotQuote(e.label))
	case edgeService:
		return `, class="service-task", style=dotted, color="#9c6ab0", constraint=false`
	}
	return `, class="veth"`
}

// dotQuote is s as a DOT quoted string; a newline becomes a centred line
// break.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
