package graph

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Formats are the output formats, the default first.
var Formats = []string{"svg", "dot", "mermaid", "html"}

// Render writes t in format, one of [Formats].
func Render(ctx context.Context, w io.Writer, format string, t Topology) error {
	switch format {
	case "svg":
		return SVG(ctx, w, t)
	case "dot":
		return DOT(w, t)
	case "mermaid":
		return Mermaid(w, t)
	case "html":
		return HTML(ctx, w, t)
	}
	return fmt.Errorf("graph: unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}
