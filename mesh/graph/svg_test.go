package graph

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
)

// svgIDs parses an SVG document and returns the id and class of every
// element that has an id.
func svgIDs(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	ids := map[string]string{}
	dec := xml.NewDecoder(r)
	dec.Strict = false // dot writes an HTML-style doctype
	sawSVG := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parse svg: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		sawSVG = sawSVG || el.Name.Local == "svg"
		var id, class string
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "id":
				id = a.Value
			case "class":
				class = a.Value
			}
		}
		if id != "" {
			ids[id] = class
		}
	}
	if !sawSVG {
		t.Fatal("got no <svg> element, want one")
	}
	return ids
}

// wantIDs are the SVG ids every namespace and tunnel of t must have.
func wantIDs(t Topology) []string {
	var want []string
	for _, n := range t.Nodes {
		want = append(want, "node:"+n.Name)
		for _, ns := range n.Namespaces {
			want = append(want, "ns:"+n.Name+":"+ns.Name)
		}
	}
	for _, tu := range t.Tunnels {
		want = append(want, "tunnel:"+tu.Network+":"+tu.A.Node+":"+tu.B.Node)
	}
	return want
}

func TestSVGHasEveryNamespaceAndTunnel(t *testing.T) {
	testutil.RequireTool(t, DotCommand)
	topo := fixture()
	var out bytes.Buffer
	if err := SVG(context.Background(), &out, topo); err != nil {
		t.Fatal(err)
	}
	svg := out.String()
	ids := svgIDs(t, strings.NewReader(svg))
	for _, id := range wantIDs(topo) {
		if _, ok := ids[id]; !ok {
			t.Errorf("svg has no element %q", id)
		}
	}
	if got, want := ids["tunnel:ovnet:node1:node3"], "tunnel"; !strings.Contains(got, want) {
		t.Errorf("got class %q on the node1-node3 tunnel, want %q", got, want)
	}
	if !strings.Contains(svg, ">VNI 4096<") {
		t.Error("svg has no label VNI 4096")
	}
}

func TestSVGWithoutDot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, f := range []string{"svg", "html"} {
		err := Render(context.Background(), io.Discard, f, fixture())
		if !errors.Is(err, ErrNoDot) {
			t.Errorf("%s: got %v, want %v", f, err, ErrNoDot)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got a message of several lines, want one: %q", f, err)
		}
	}
	// The text formats need no Graphviz.
	for _, f := range []string{"dot", "mermaid"} {
		if err := Render(context.Background(), io.Discard, f, fixture()); err != nil {
			t.Errorf("%s: got %v, want no error", f, err)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	bad := fixture()
	bad.Nodes[0].Veths = append(bad.Nodes[0].Veths, Veth{A: End{"host", "nope"}, B: End{"ingress_sbox", "eth0"}})
	badTunnel := fixture()
	badTunnel.Tunnels[0].B.Node = "node9"
	tests := []struct {
		name   string
		format string
		topo   Topology
		want   string
	}{
		{"unknown format", "png", fixture(), `unknown format "png"`},
		{"veth to a missing link", "dot", bad, `node1: host: no link "nope"`},
		{"tunnel to a missing node", "mermaid", badTunnel, `no node "node9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Render(context.Background(), io.Discard, tt.format, tt.topo)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
