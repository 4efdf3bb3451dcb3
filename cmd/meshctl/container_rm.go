package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// containerRmOptions are docker rm's flags.
type containerRmOptions struct {
	refs  []string
	force bool // -f: kill a running container first
}

// newContainerRmCommand is the top-level rm: docker's container rm. The
// network and service rm are newRmCommand's.
func newContainerRmCommand(c *cli) *cobra.Command {
	var opts containerRmOptions
	cmd := &cobra.Command{
		Use: "rm [OPTIONS] CONTAINER [CONTAINER...]", Short: "Remove one or more containers",
		Args: minArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.refs = args
			return runContainerRm(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Force the removal of a running container")
	return cmd
}

// runContainerRm removes every container, printing each ref as docker
// does.
func runContainerRm(ctx context.Context, cl containerAPI, out io.Writer, opts containerRmOptions) error {
	rm := func(ctx context.Context, ref string) error { return cl.RemoveContainer(ctx, ref, opts.force) }
	return runRm(ctx, rm, out, opts.refs)
}
