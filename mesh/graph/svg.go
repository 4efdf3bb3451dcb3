package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// DotCommand is Graphviz's layout program, from Debian's graphviz package.
const DotCommand = "dot"

// ErrNoDot is returned by [SVG] and [HTML] when Graphviz's dot is not on
// the PATH: they lay the graph out with it.
var ErrNoDot = errors.New("graph: svg and html need Graphviz's dot (Debian package graphviz), not found in PATH")

// SVG writes the topology laid out by Graphviz: [DOT]'s source through
// dot -Tsvg. The ids of the clusters and edges (node:node1,
// ns:node1:ingress_sbox, tunnel:ovnet:node1:node2) are the SVG's element
// ids.
func SVG(ctx context.Context, w io.Writer, t Topology) error {
	svg, err := layout(ctx, t)
	if err != nil {
		return err
	}
	_, err = w.Write(svg)
	return err
}

// layout runs dot -Tsvg on the topology's DOT source.
func layout(ctx context.Context, t Topology) ([]byte, error) {
	path, err := exec.LookPath(DotCommand)
	if err != nil {
		return nil, ErrNoDot
	}
	var src bytes.Buffer
	if err := DOT(&src, t); err != nil {
		return nil, err
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-Tsvg")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &src, &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dot -Tsvg: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}
