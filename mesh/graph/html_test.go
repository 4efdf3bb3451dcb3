package graph

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"golang.org/x/net/html"
)

// chromium runs headless Chromium (Debian's chromium package) on a file
// with args and returns its standard output.
func chromium(t *testing.T, page string, args ...string) []byte {
	t.Helper()
	path := testutil.RequireTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --no-sandbox: the tests run as root, where Chromium's sandbox
	// refuses to start. The page loads nothing, so it matters little.
	argv := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, path, append(argv, "file://"+page)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.Bytes()
}

// countClass counts the elements of the document whose class attribute
// holds class.
func countClass(n *html.Node, class string) int {
	c := 0
	if n.Type == html.ElementNode {
		for _, a := range n.Attr {
			if a.Key == "class" && slices.Contains(strings.Fields(a.Val), class) {
				c++
			}
		}
	}
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		c += countClass(ch, class)
	}
	return c
}

func TestHTMLInChromium(t *testing.T) {
	testutil.RequireTool(t, DotCommand)
	topo := fixture()
	var out bytes.Buffer
	if err := HTML(context.Background(), &out, topo); err != nil {
		t.Fatal(err)
	}
	for _, external := range []string{"<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(out.String(), external) {
			t.Errorf("page has %q, want it self-contained", external)
		}
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "graph.html")
	if err := os.WriteFile(page, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom, err := html.Parse(bytes.NewReader(chromium(t, page, "--dump-dom")))
	if err != nil {
		t.Fatalf("parse chromium's dom: %v", err)
	}
	namespaces := 0
	for _, n := range topo.Nodes {
		namespaces += len(n.Namespaces)
	}
	for _, c := range []struct {
		class string
		want  int
	}{{"node-box", len(topo.Nodes)}, {"ns-box", namespaces}, {"tunnel", len(topo.Tunnels)}, {"ns-task", 3}} {
		if got := countClass(dom, c.class); got != c.want {
			t.Errorf("got %d elements of class %s in the dom, want %d", got, c.class, c.want)
		}
	}

	shot := filepath.Join(dir, "graph.png")
	chromium(t, page, "--screenshot="+shot, "--window-size=1600,1000", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium made no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1600 || b.Dy() != 1000 {
		t.Errorf("got a %dx%d screenshot, want 1600x1000", b.Dx(), b.Dy())
	}
	// The task namespaces' green is drawn only by the SVG: seen, the
	// graph was rendered, not just the page around it.
	green := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == 0xde && g>>8 == 0xf3 && bl>>8 == 0xde {
				green++
			}
		}
	}
	if green < 1000 {
		t.Errorf("got %d pixels of the task namespaces' colour #def3de in the screenshot, want the graph drawn (1000 at least)", green)
	}
}
