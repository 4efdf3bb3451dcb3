package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type nodeRmOptions struct {
	refs  []string
	force bool // --force: even a node that is not down
}

func newNodeRmCommand(c *cli) *cobra.Command {
	var opts nodeRmOptions
	cmd := &cobra.Command{
		Use: "rm NODE [NODE...]", Aliases: []string{"remove"}, Short: "Forget nodes that are down", Args: cobra.MinimumNArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.refs = args
			return runNodeRm(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "remove even if the node is not down")
	return cmd
}

func runNodeRm(ctx context.Context, cl nodeAPI, out io.Writer, opts nodeRmOptions) error {
	rm := func(ctx context.Context, ref string) error { return cl.RemoveNode(ctx, ref, opts.force) }
	return runRm(ctx, rm, out, opts.refs)
}
