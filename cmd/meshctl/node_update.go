package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type nodeUpdateOptions struct {
	ref          string
	availability string // --availability: active, pause or drain
}

func newNodeUpdateCommand(c *cli) *cobra.Command {
	var opts nodeUpdateOptions
	cmd := &cobra.Command{
		Use: "update --availability active|pause|drain NODE", Short: "Change a node's availability", Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error { return opts.validate() },
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.ref = args[0]
			return runNodeUpdate(ctx, cl, c.out, opts)
		}),
	}
	cmd.Flags().StringVar(&opts.availability, "availability", "", "active, pause or drain")
	return cmd
}

// validate fails when there is nothing to update; meshd checks the values.
func (o nodeUpdateOptions) validate() error {
	if o.availability == "" {
		return errors.New("nothing to update: give --availability active, pause or drain")
	}
	return nil
}

// runNodeUpdate changes the node and prints its hostname.
func runNodeUpdate(ctx context.Context, cl nodeAPI, out io.Writer, opts nodeUpdateOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	n, err := cl.UpdateNode(ctx, opts.ref, api.NodeUpdate{Availability: opts.availability})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, n.Hostname)
	return nil
}
