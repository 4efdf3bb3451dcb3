package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	format string   // --format: a Go template or json; empty prints the tables
	filter []string // --filter KEY=VALUE, as given
}

// lbFilters pick tables as docker's lists pick rows: the sandbox's name
// as network ls matches names, the network by its name.
var lbFilters = filterSpec[api.LBTable]{
	"name":    func(t api.LBTable, v string) bool { return matchName(t.Sandbox, v) },
	"network": func(t api.LBTable, v string) bool { return t.Network == v },
}

func newLBLsCommand(c *cli) *cobra.Command {
	var opts lbLsOptions
	cmd := &cobra.Command{
		Use: "ls", Short: "Each sandbox's table, as ipvsadm -Ln prints it, whichever data plane runs", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runLBLs(ctx, cl, c.out, opts)
		}),
	}
	// A list: --format has no shorthand, -f is --filter.
	cmd.Flags().StringVar(&opts.format, flagFormat, "", "Go template or json")
	addFilterFlag(cmd, &opts.filter, lbFilters.keys())
	return cmd
}

// flowNote is the header's word on the sandbox's flowtable: which
// interfaces it carries established connections between, or that the
// node cannot hold one (why is in -o json and {{.FlowOffload}}); nothing
// where there is none to have (the IPVS plane, nothing balanced,
// --flow-offload=false).
func flowNote(state string) string {
	switch {
	case strings.HasPrefix(state, "on "):
		return ", flow offload " + state
	case strings.HasPrefix(state, "unavailable"):
		return ", flow offload unavailable"
	}
	return ""
}

// runLBLs prints each sandbox's table under a "# sandbox" line.
func runLBLs(ctx context.Context, cl lbAPI, out io.Writer, opts lbLsOptions) error {
	tables, err := listFiltered(ctx, cl.LBTables, lbFilters, opts.filter, nil)
	if err != nil {
		return err
	}
	if opts.format != "" {
		if opts.format == formatJSON {
			return printEach(out, opts.format, tables)
		}
		return printFormat(out, opts.format, tables, lbFields)
	}
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "# %s (network %s, data plane %s%s)\n", t.Sandbox, t.Network, t.DataPlane, flowNote(t.FlowOffload))
		if t.Error != "" {
			fmt.Fprintf(out, "error: %s\n", t.Error)
		}
		fmt.Fprint(out, t.Table)
	}
	return nil
}
