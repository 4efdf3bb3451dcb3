package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// nodeAPI is what the node commands need from meshd; inspect needs only
// Node, and takes it alone (see newInspectCommand).
type nodeAPI interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	Node(ctx context.Context, ref string) (api.Node, error)
	UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error)
	RemoveNode(ctx context.Context, ref string, force bool) error
}

var _ nodeAPI = (*api.Client)(nil)

func newNodeCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage the cluster's nodes"}
	cmd.AddCommand(newNodeLsCommand(c), newInspectCommand(c, "inspect NODE [NODE...]", "Show nodes in detail", (*api.Client).Node),
		newNodeUpdateCommand(c), newNodePromoteCommand(c), newNodeDemoteCommand(c), newNodeRmCommand(c))
	return cmd
}

// setRoles gives every node of refs role, as docker's node promote and
// demote do: a node that has it already is said so and left alone, and
// done(ref) is printed for each one changed. Unlike docker, which stops
// at the first failure, the other nodes are still tried, as rm does, and
// the failures are returned as one line.
func setRoles(ctx context.Context, cl nodeAPI, out io.Writer, refs []string, role string, done func(ref string) string) error {
	var failed []string
	for _, ref := range refs {
		n, err := cl.Node(ctx, ref)
		if err == nil && n.Role == role {
			fmt.Fprintf(out, "Node %s is already a %s.\n", n.ID, role)
			continue
		}
		if err == nil {
			_, err = cl.UpdateNode(ctx, ref, api.NodeUpdate{Role: role})
		}
		if err != nil {
			failed = append(failed, err.Error())
			continue
		}
		fmt.Fprintln(out, done(ref))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
