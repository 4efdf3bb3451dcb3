package main

import (
	"context"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// nodeAPI is what the node commands need from meshd; inspect needs only
// Node, and takes it alone (see newInspectCommand).
type nodeAPI interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error)
	RemoveNode(ctx context.Context, ref string, force bool) error
}

var _ nodeAPI = (*api.Client)(nil)

func newNodeCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage the cluster's nodes"}
	cmd.AddCommand(newNodeLsCommand(c), newInspectCommand(c, "inspect NODE [NODE...]", "Show nodes in detail", (*api.Client).Node), newNodeUpdateCommand(c), newNodeRmCommand(c))
	return cmd
}
