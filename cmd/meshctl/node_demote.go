package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newNodeDemoteCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "demote NODE [NODE...]", Short: "Demote managers to workers", Args: minArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			return runNodeDemote(ctx, cl, c.out, args)
		}),
	}
}

func runNodeDemote(ctx context.Context, cl nodeAPI, out io.Writer, refs []string) error {
	return setRoles(ctx, cl, out, refs, api.RoleWorker, func(ref string) string {
		return "Manager " + ref + " demoted in the swarm."
	})
}
