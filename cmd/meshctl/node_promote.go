package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newNodePromoteCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "promote NODE [NODE...]", Short: "Promote nodes to managers", Args: minArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			return runNodePromote(ctx, cl, c.out, args)
		}),
	}
}

func runNodePromote(ctx context.Context, cl nodeAPI, out io.Writer, refs []string) error {
	return setRoles(ctx, cl, out, refs, api.RoleManager, func(ref string) string {
		return "Node " + ref + " promoted to a manager in the swarm."
	})
}
