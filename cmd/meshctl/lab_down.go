package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

func newLabDownCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "down", Short: "Remove the lab: processes, namespaces, links, mounts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLabDown(cmd.Context(), c.out, c.labOptions())
		},
	}
}

func runLabDown(ctx context.Context, out io.Writer, opts labOptions) error {
	removed, err := lab.Down(ctx, opts.root, opts.prefix)
	if err != nil {
		return err
	}
	if !removed {
		fmt.Fprintln(out, "no lab is up: nothing to do")
		return nil
	}
	fmt.Fprintln(out, "lab down: everything removed")
	return nil
}
