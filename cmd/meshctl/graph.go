package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// graphClusterAPI is what graph asks the node it talks to about the
// cluster (a manager: workers refuse cluster reads).
type graphClusterAPI interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	Services(ctx context.Context) ([]api.Service, error)
	Tasks(ctx context.Context, service, node string) ([]api.Task, error)
}

// graphNodeAPI is what graph asks each node about itself.
type graphNodeAPI interface {
	Info(ctx context.Context) (api.Info, error)
	Namespaces(ctx context.Context) ([]api.Namespace, error)
	Networks(ctx context.Context) ([]api.NetworkResource, error)
	Network(ctx context.Context, ref string) (api.NetworkResource, error)
}

var (
	_ graphClusterAPI = (*api.Client)(nil)
	_ graphNodeAPI    = (*api.Client)(nil)
)

type graphOptions struct {
	format string // -o: one of graph.Formats
}

func newGraphCommand(c *cli) *cobra.Command {
	var opts graphOptions
	cmd := &cobra.Command{
		Use:   "graph [-o svg|dot|mermaid|html]",
		Short: "Draw the cluster: namespaces, links, VXLAN tunnels, services",
		Long: "Draw the cluster as the tutorials draw it: per node the host namespace, mesh_gwbridge,\n" +
			"ingress_sbox, the lb_ sandboxes, the 1-<id> overlay namespaces, the tasks; the veth pairs\n" +
			"between them; the VXLAN tunnels between the nodes with their VNI; the services and their VIPs.\n" +
			"In a lab every node is asked about its own namespaces; elsewhere only the one meshctl talks to.\n" +
			"svg and html are laid out by Graphviz's dot (Debian package graphviz); html is one file\n" +
			"holding the SVG and a table of the addresses.",
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			for _, f := range graph.Formats {
				if opts.format == f {
					return nil
				}
			}
			return fmt.Errorf("-o %s: want one of %s", opts.format, strings.Join(graph.Formats, ", "))
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runGraph(ctx, cl, c.graphNodes(cl), c.out, opts)
		}),
	}
	cmd.Flags().StringVarP(&opts.format, "output", "o", graph.Formats[0], "format: "+strings.Join(graph.Formats, ", "))
	return cmd
}

// graphNodes are the nodes graph asks about their namespaces and
// endpoints: every node of the lab when there is one and --socket does
// not name a meshd, else only the one cl talks to (the API serves those
// reads per node; the kernel snapshot will bring the others' in).
func (c *cli) graphNodes(cl *api.Client) []graphNodeAPI {
	if c.socket == "" {
		if l, err := lab.Load(c.labRoot, c.labPrefix); err == nil {
			var out []graphNodeAPI
			for _, n := range l.Nodes() {
				out = append(out, api.NewClient(l.Socket(n.Name)))
			}
			return out
		}
	}
	return []graphNodeAPI{cl}
}

func runGraph(ctx context.Context, cluster graphClusterAPI, nodes []graphNodeAPI, out io.Writer, opts graphOptions) error {
	cv, err := readClusterView(ctx, cluster)
	if err != nil {
		return err
	}
	var nvs []nodeView
	for _, n := range nodes {
		nv, err := readNodeView(ctx, n)
		if err != nil {
			return err
		}
		nvs = append(nvs, nv)
	}
	return graph.Render(ctx, out, opts.format, topologyFrom(cv, nvs))
}

func readClusterView(ctx context.Context, cl graphClusterAPI) (clusterView, error) {
	var cv clusterView
	var err error
	if cv.Nodes, err = cl.Nodes(ctx); err != nil {
		return cv, err
	}
	if cv.Services, err = cl.Services(ctx); err != nil {
		return cv, err
	}
	cv.Tasks, err = cl.Tasks(ctx, "", "")
	return cv, err
}

// readNodeView asks one node for its namespaces and, inspected there, the
// networks it has endpoints on: the swarm's and its gateway bridge.
func readNodeView(ctx context.Context, cl graphNodeAPI) (nodeView, error) {
	var nv nodeView
	var err error
	if nv.Info, err = cl.Info(ctx); err != nil {
		return nv, err
	}
	if nv.Namespaces, err = cl.Namespaces(ctx); err != nil {
		return nv, fmt.Errorf("%s: %w", nv.Info.NodeName, err)
	}
	nets, err := cl.Networks(ctx)
	if err != nil {
		return nv, fmt.Errorf("%s: %w", nv.Info.NodeName, err)
	}
	for _, n := range nets {
		if n.Scope != api.ScopeSwarm && n.Name != gatewayBridge {
			continue
		}
		r, err := cl.Network(ctx, n.ID)
		if err != nil {
			return nv, fmt.Errorf("%s: network %s: %w", nv.Info.NodeName, n.Name, err)
		}
		nv.Networks = append(nv.Networks, r)
	}
	return nv, nil
}
