package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// TestGraph draws the tutorial's lab, three nodes with www's two tasks on
// ovnet publishing 8888:80: the SVG holds every namespace ns ls lists on
// every node, the sandboxes' eth0 named with their peer's real ifindex,
// and exactly the VXLAN tunnels the nodes' FDBs make (every two nodes
// that have a network); the HTML page, rendered by headless Chromium,
// shows the three node boxes.
func TestGraph(t *testing.T) {
	testutil.RequireTool(t, "dot")
	chromium := testutil.RequireTool(t, "chromium")
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "--publish", "8888:80", "whoami")

	// The tunnels are drawn from the FDB: wait until every node that has
	// a network sends to every other that has it.
	var snaps []api.KernelSnapshot
	var tunnels []string
	eventually(t, 10*time.Second, "a full mesh of FDB entries per network", func() (bool, string) {
		snaps = l.snapshots(t)
		var missing string
		tunnels, missing = fdbTunnels(snaps)
		return missing == "", missing
	})
	if len(tunnels) != 4 { // ingress on node1-3, ovnet on www's two nodes
		t.Fatalf("tunnels from the FDB %v, want 3 of ingress and 1 of ovnet", tunnels)
	}

	out, err := l.ctlStdout("--node", "node1", "graph", "-o", "svg")
	if err != nil {
		t.Fatalf("graph -o svg: %v", err)
	}
	svg, err := parseSVG(out)
	if err != nil {
		t.Fatalf("graph -o svg is not valid XML: %v\n%s", err, out)
	}
	if diff := cmp.Diff(tunnels, svg.ids("tunnel")); diff != "" {
		t.Errorf("tunnels in the SVG (-FDB +SVG):\n%s", diff)
	}
	for _, s := range snaps {
		for _, ns := range l.nsLs(t, s.NodeName) {
			if !svg.has("ns:" + s.NodeName + ":" + ns) {
				t.Errorf("ns ls on %s lists %s, the SVG has no ns:%s:%s", s.NodeName, ns, s.NodeName, ns)
			}
		}
		// ip a's name, from the peer's real ifindex.
		eth0 := kernelLinkNamed(s.Netns("ingress_sbox"), "eth0")
		id := "link:" + s.NodeName + ":ingress_sbox:eth0"
		if want := fmt.Sprintf("eth0@if%d", eth0.PeerIndex); eth0.PeerIndex == 0 || !slices.Contains(svg.texts[id], want) {
			t.Errorf("%s reads %q, want %q (its peer's ifindex)", id, svg.texts[id], want)
		}
	}

	html := filepath.Join(t.TempDir(), "mesh.html")
	if out, err := l.ctlStdout("--node", "node1", "graph", "-o", "html"); err != nil {
		t.Fatalf("graph -o html: %v", err)
	} else if err := os.WriteFile(html, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, shot := renderHTML(t, l, chromium, html)
	if n := len(nodeBoxRE.FindAllString(dom, -1)); n != 3 {
		t.Errorf("the rendered page has %d node boxes, want 3", n)
	}
	checkScreenshot(t, shot)
}

// snapshots reads every node's kernel snapshot.
func (l *testLab) snapshots(t *testing.T) []api.KernelSnapshot {
	t.Helper()
	var out []api.KernelSnapshot
	for _, n := range []string{"node1", "node2", "node3"} {
		s, err := api.NewClient(l.load().Socket(n)).Kernel(context.Background())
		if err != nil {
			t.Fatalf("kernel snapshot of %s: %v", n, err)
		}
		out = append(out, s)
	}
	return out
}

// fdbTunnels are the tunnels the graph must draw, as its SVG ids name
// them (tunnel:NETWORK:NODE:NODE), one per network and two nodes that
// both have it; missing says which FDB entries are not there yet.
func fdbTunnels(snaps []api.KernelSnapshot) (tunnels []string, missing string) {
	have := map[string][]api.KernelSnapshot{} // network → the nodes with its namespace
	for _, s := range snaps {
		for _, ns := range s.Namespaces {
			if ns.Kind == "overlay" {
				have[ns.Owner] = append(have[ns.Owner], s)
			}
		}
	}
	var miss []string
	for network, nodes := range have {
		for _, a := range nodes {
			for _, b := range nodes {
				if a.NodeName >= b.NodeName {
					continue
				}
				tunnels = append(tunnels, "tunnel:"+network+":"+a.NodeName+":"+b.NodeName)
				for _, p := range [][2]api.KernelSnapshot{{a, b}, {b, a}} {
					if !sendsTo(p[0], network, p[1].NodeAddr) {
						miss = append(miss, fmt.Sprintf("%s's %s vxlan0 has no entry to %s", p[0].NodeName, network, p[1].NodeName))
					}
				}
			}
		}
	}
	slices.Sort(tunnels)
	return tunnels, strings.Join(miss, "\n")
}

// sendsTo says whether s's vxlan0 of network has a forwarding entry to
// the VTEP addr.
func sendsTo(s api.KernelSnapshot, network, addr string) bool {
	for _, ns := range s.Namespaces {
		if ns.Kind != "overlay" || ns.Owner != network {
			continue
		}
		return slices.ContainsFunc(ns.FDB, func(e api.KernelFDB) bool { return e.Dev == "vxlan0" && e.Dst.String() == addr })
	}
	return false
}

func kernelLinkNamed(ns *api.NetnsState, name string) api.KernelLink {
	if ns != nil {
		for _, l := range ns.Links {
			if l.Name == name {
				return l
			}
		}
	}
	return api.KernelLink{}
}

// nsLs is the NAME column of ns ls on node.
func (l *testLab) nsLs(t *testing.T, node string) []string {
	t.Helper()
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(l.must(t, "--node", node, "ns", "ls")), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			out = append(out, f[0])
		}
	}
	if len(out) == 0 {
		t.Fatalf("ns ls on %s lists nothing", node)
	}
	return out
}

// svgDoc is what the test reads of an SVG: every element's id, with its
// class and the text inside it.
type svgDoc struct {
	class map[string]string
	texts map[string][]string
}

// parseSVG decodes the whole document, failing on anything that is not
// well-formed XML.
func parseSVG(s string) (svgDoc, error) {
	doc := svgDoc{class: map[string]string{}, texts: map[string][]string{}}
	dec := xml.NewDecoder(strings.NewReader(s))
	var open []string // ids of the enclosing elements that have one
	root := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return doc, err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			root = root || el.Name.Local == "svg"
			id, class := "", ""
			for _, a := range el.Attr {
				switch a.Name.Local {
				case "id":
					id = a.Value
				case "class":
					class = a.Value
				}
			}
			if id != "" {
				doc.class[id] = class
			}
			open = append(open, id)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if text := strings.TrimSpace(string(el)); text != "" {
				for _, id := range open {
					if id != "" {
						doc.texts[id] = append(doc.texts[id], text)
					}
				}
			}
		}
	}
	if !root {
		return doc, errors.New("no <svg> element")
	}
	return doc, nil
}

func (d svgDoc) has(id string) bool { _, ok := d.class[id]; return ok }

// ids are the sorted ids of the elements whose class holds class.
func (d svgDoc) ids(class string) []string {
	var out []string
	for id, c := range d.class {
		if slices.Contains(strings.Fields(c), class) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// nodeBoxRE matches a node's box, a cluster dot drew for it, in the DOM.
var nodeBoxRE = regexp.MustCompile(`<g\b[^>]*\bclass="[^"]*\bnode-box\b`)

// renderHTML renders the page in headless Chromium, in the lab's client
// namespace so that nothing it might fetch leaves the lab, and returns its
// DOM after layout and a screenshot.
func renderHTML(t *testing.T, l *testLab, chromium, page string) (dom string, shot []byte) {
	t.Helper()
	dir := t.TempDir()
	png := filepath.Join(dir, "mesh.png")
	out, err := l.ctlStdout("lab", "exec", "client", "--", chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1600,1200",
		"--screenshot="+png, "--dump-dom", "file://"+page)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err = os.ReadFile(png)
	if err != nil {
		t.Fatalf("chromium's screenshot: %v", err)
	}
	return out, shot
}

// checkScreenshot decodes the PNG and looks for the namespaces' fills
// (ingress orange, overlay blue, task green): the boxes were painted.
func checkScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	fills := map[string][3]uint32{"ingress": {0xfd, 0xe0, 0xc5}, "overlay": {0xdc, 0xe9, 0xf7}, "task": {0xde, 0xf3, 0xde}}
	count := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for kind, c := range fills {
				if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
					count[kind]++
				}
			}
		}
	}
	for kind := range fills {
		if count[kind] < 1000 {
			t.Errorf("screenshot %v: %d pixels of the %s namespaces' fill, want their boxes", b.Size(), count[kind], kind)
		}
	}
}

func near(a, b uint32) bool { return a+2 >= b && b+2 >= a }
