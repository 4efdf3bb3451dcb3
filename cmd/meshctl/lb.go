package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// lbAPI is what the lb commands need from meshd.
type lbAPI interface {
	LBTables(ctx context.Context) ([]api.LBTable, error)
}

var _ lbAPI = (*api.Client)(nil)

func newLBCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "The load balancers of this node"}
	cmd.AddCommand(newLBLsCommand(c))
	return cmd
}

type lbLsOptions struct {
	format string // --format: a Go template or json; empty prints the tables
}

func newLBLsCommand(c *cli) *cobra.Command {
	var opts lbLsOptions
	cmd := &cobra.Command{
		Use: "ls", Short: "Each sandbox's table, as ipvsadm -Ln prints it, whichever data plane runs", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runLBLs(ctx, cl, c.out, opts)
		}),
	}
	addFormatFlag(cmd, &opts.format)
	return cmd
}

// runLBLs prints each sandbox's table under a "# sandbox" line.
func runLBLs(ctx context.Context, cl lbAPI, out io.Writer, opts lbLsOptions) error {
	tables, err := cl.LBTables(ctx)
	if err != nil {
		return err
	}
	if opts.format != "" {
		return printEach(out, opts.format, tables)
	}
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "# %s (network %s, data plane %s)\n", t.Sandbox, t.Network, t.DataPlane)
		if t.Error != "" {
			fmt.Fprintf(out, "error: %s\n", t.Error)
		}
		fmt.Fprint(out, t.Table)
	}
	return nil
}
