package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type swarmLeaveOptions struct {
	force bool // --force: a manager too
}

func newSwarmLeaveCommand(c *cli) *cobra.Command {
	var opts swarmLeaveOptions
	cmd := &cobra.Command{
		Use: "leave [OPTIONS]", Short: "Leave the swarm: this node's tasks stop and its namespaces go", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runSwarmLeave(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "leave even if this node is a manager")
	return cmd
}

func runSwarmLeave(ctx context.Context, cl swarmAPI, out io.Writer, opts swarmLeaveOptions) error {
	if err := cl.SwarmLeave(ctx, api.SwarmLeave{Force: opts.force}); err != nil {
		return err
	}
	fmt.Fprintln(out, "Node left the swarm.")
	return nil
}
