package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/graph"
	"github.com/spf13/cobra"
)

// graphAPI is what graph asks a manager about the cluster (workers
// refuse cluster reads); the kernels it draws are the nodes' snapshots.
type graphAPI interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	Networks(ctx context.Context) ([]api.NetworkResource, error)
	Services(ctx context.Context) ([]api.Service, error)
	Tasks(ctx context.Context, service, node string) ([]api.Task, error)
}

var _ graphAPI = (*api.Client)(nil)

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
			"Namespaces, links, ifindexes and tunnels are read from each node's kernel (its snapshot, the\n" +
			"tunnels from vxlan0's forwarding entries); services, VIPs and tasks from the cluster. In a lab\n" +
			"every node's kernel is read; elsewhere only that of the node meshctl talks to.\n" +
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
			snaps, err := c.graphSnapshots(ctx, cl)
			if err != nil {
				return err
			}
			return runGraph(ctx, cl, snaps, c.out, opts)
		}),
	}
	cmd.Flags().StringVarP(&opts.format, "output", "o", graph.Formats[0], "format: "+strings.Join(graph.Formats, ", "))
	return cmd
}

// graphSnapshots are the kernel snapshots graph draws: every lab node's,
// read as trace reads them, or outside a lab the one node cl talks to
// (another machine's socket is root's on that machine).
func (c *cli) graphSnapshots(ctx context.Context, cl *api.Client) ([]api.KernelSnapshot, error) {
	snaps, err := c.traceSource().snapshots(ctx)
	if err != nil || len(snaps) > 0 {
		return snaps, err
	}
	snap, err := cl.Kernel(ctx)
	if err != nil {
		return nil, fmt.Errorf("kernel snapshot: %w", err)
	}
	return []api.KernelSnapshot{snap}, nil
}

func runGraph(ctx context.Context, cl graphAPI, snaps []api.KernelSnapshot, out io.Writer, opts graphOptions) error {
	cv, err := readClusterView(ctx, cl)
	if err != nil {
		return err
	}
	return graph.Render(ctx, out, opts.format, topologyFrom(cv, snaps))
}

func readClusterView(ctx context.Context, cl graphAPI) (clusterView, error) {
	var cv clusterView
	var err error
	if cv.Nodes, err = cl.Nodes(ctx); err != nil {
		return cv, err
	}
	if cv.Networks, err = cl.Networks(ctx); err != nil {
		return cv, err
	}
	if cv.Services, err = cl.Services(ctx); err != nil {
		return cv, err
	}
	cv.Tasks, err = cl.Tasks(ctx, "", "")
	return cv, err
}
