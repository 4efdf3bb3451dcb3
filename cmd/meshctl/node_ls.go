package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newNodeLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List nodes", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runNodeLs(ctx, cl, c.out, opts)
		}),
	}
	addFormatFlags(cmd, &opts, "only IDs")
	return cmd
}

// runNodeLs prints the nodes as docker node ls does, the answering node
// marked with a *.
func runNodeLs(ctx context.Context, cl nodeAPI, out io.Writer, opts listOptions) error {
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return err
	}
	return printList(out, opts, nodes, func(n api.Node) string { return n.ID },
		[]string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDR", "DATAPLANE"},
		func(n api.Node) []string {
			id := n.ID
			if n.Self {
				id += " *"
			}
			return []string{id, n.Hostname, n.Status, n.Availability, n.ManagerStatus, n.Addr, n.DataPlane}
		})
}
