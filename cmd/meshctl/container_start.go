package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newStartCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use: "start CONTAINER [CONTAINER...]", Short: "Start one or more stopped containers", Args: minArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			return runStart(ctx, cl, c.out, args)
		}),
	}
	return cmd
}

// runStart starts every container again, printing each ref as docker
// does.
func runStart(ctx context.Context, cl containerAPI, out io.Writer, refs []string) error {
	start := func(ctx context.Context, ref string) error {
		t, err := cl.StartContainer(ctx, ref)
		if err != nil {
			return err
		}
		return awaitStarted(ctx, cl, t)
	}
	return runRm(ctx, start, out, refs)
}
