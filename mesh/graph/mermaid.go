package graph

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Mermaid writes the topology as a Mermaid flowchart: a subgraph per node
// holding one per namespace, a box per link; veth pairs as lines, bridge
// ports as thick lines, VXLAN tunnels as dotted lines labelled with their
// VNI, and services as rounded boxes with a dotted line to each task.
// Mermaid lays it out itself, so the order the nodes come in is kept.
func Mermaid(w io.Writer, t Topology) error {
	p, err := newPlan(&t)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "flowchart TB")
	for ni, n := range t.Nodes {
		fmt.Fprintf(bw, "  subgraph n%d[%s]\n", ni, mermaidQuote(nodeTitle(n)))
		for si, ns := range n.Namespaces {
			fmt.Fprintf(bw, "    subgraph %s[%s]\n", nsID(ni, si), mermaidQuote(ns.Title()))
			if len(ns.Links) == 0 {
				fmt.Fprintf(bw, "      %s[%s]\n", anchorID(ni, si), mermaidQuote(string(ns.Kind)))
			}
			for li := range ns.Links {
				fmt.Fprintf(bw, "      %s[%s]\n", linkID(ni, si, li), mermaidQuote(strings.Join(p.linkLines(ni, si, li), "\n")))
			}
			fmt.Fprintln(bw, "    end")
		}
		fmt.Fprintln(bw, "  end")
	}
	for i, s := range t.Services {
		fmt.Fprintf(bw, "  %s([%s])\n", serviceID(i), mermaidQuote(strings.Join(serviceLines(s), "\n")))
	}
	for _, e := range p.edges {
		switch e.kind {
		case edgeVeth:
			fmt.Fprintf(bw, "  %s --- %s\n", e.from, e.to)
		case edgePort:
			fmt.Fprintf(bw, "  %s === %s\n", e.from, e.to)
		case edgeTunnel:
			fmt.Fprintf(bw, "  %s -.-|%s| %s\n", e.from, mermaidQuote(e.label), e.to)
		case edgeService:
			fmt.Fprintf(bw, "  %s -.- %s\n", e.from, e.to)
		}
	}
	mermaidClasses(bw, t)
	return bw.Flush()
}

// mermaidClasses colours the namespaces and links as [DOT] does.
func mermaidClasses(bw *bufio.Writer, t Topology) {
	for _, k := range []Kind{KindHost, KindIngress, KindLB, KindOverlay, KindTask} {
		fmt.Fprintf(bw, "  classDef %s fill:%s,stroke:#999999\n", k, kindFill[k])
	}
	for _, k := range []LinkKind{LinkBridge, LinkVXLAN} {
		fmt.Fprintf(bw, "  classDef %s fill:%s\n", k, linkFill[k])
	}
	for ni, n := range t.Nodes {
		for si, ns := range n.Namespaces {
			fmt.Fprintf(bw, "  class %s %s\n", nsID(ni, si), ns.Kind)
			for li, l := range ns.Links {
				if _, ok := linkFill[l.Kind]; ok {
					fmt.Fprintf(bw, "  class %s %s\n", linkID(ni, si, li), l.Kind)
				}
			}
		}
	}
}

// mermaidQuote is s as a Mermaid quoted label: quotes as the entity
// Mermaid knows, lines broken with <br/>.
func mermaidQuote(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "\n", "<br/>")
	return `"` + r.Replace(s) + `"`
}
