package graph

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// HTML writes one self-contained page: the [SVG] inline, then tables of
// every link's addresses, the services and the tunnels. It loads nothing:
// no script, no stylesheet, no font from elsewhere.
func HTML(ctx context.Context, w io.Writer, t Topology) error {
	svg, err := layout(ctx, t)
	if err != nil {
		return err
	}
	// dot's output starts with an XML declaration and a doctype, which
	// have no place inside an HTML body.
	i := bytes.Index(svg, []byte("<svg"))
	if i < 0 {
		return fmt.Errorf("dot -Tsvg: no <svg> element in its output")
	}
	return pageTemplate.Execute(w, page{
		Topology: t,
		// dot escapes every label it writes: the SVG is trusted markup.
		SVG:   template.HTML(svg[i:]), //nolint:gosec // dot's own output from escaped labels
		Nodes: len(t.Nodes),
	})
}

type page struct {
	Topology
	SVG   template.HTML
	Nodes int
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>meshd topology</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
.graph { overflow: auto; border: 1px solid #ccc; padding: 0.5em; }
.graph svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.addr { font-family: monospace; }
</style>
</head>
<body>
<h1>meshd topology</h1>
<p>{{.Nodes}} nodes, {{len .Tunnels}} VXLAN tunnels, {{len .Services}} services.</p>
<div class="graph">
{{.SVG}}
</div>
<h2>Addresses</h2>
<table id="addresses">
<tr><th>node</th><th>namespace</th><th>owner</th><th>link</th><th>addresses</th></tr>
{{- range $n := .Topology.Nodes}}{{range $ns := $n.Namespaces}}{{range $l := $ns.Links}}
<tr><td>{{$n.Name}}</td><td>{{$ns.Name}}</td><td>{{$ns.Owner}}</td><td>{{$l.IPName}}</td><td class="addr">{{join $l.Addrs " "}}</td></tr>
{{- end}}{{end}}{{end}}
</table>
<h2>Services</h2>
<table id="services">
<tr><th>service</th><th>VIPs</th><th>ports</th><th>tasks</th></tr>
{{- range .Topology.Services}}
<tr><td>{{.Name}}</td><td class="addr">{{range .VIPs}}{{.Addr}} ({{.Network}}) {{end}}</td><td>{{join .Ports " "}}</td><td>{{range .Tasks}}{{.Name}} on {{.Node}} {{end}}</td></tr>
{{- end}}
</table>
<h2>VXLAN tunnels</h2>
<table id="tunnels">
<tr><th>network</th><th>VNI</th><th>from</th><th>to</th></tr>
{{- range .Topology.Tunnels}}
<tr><td>{{.Network}}</td><td>{{.VNI}}</td><td>{{.A.Node}} {{.A.Namespace}}</td><td>{{.B.Node}} {{.B.Namespace}}</td></tr>
{{- end}}
</table>
</body>
</html>
`))
