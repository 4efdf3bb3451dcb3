package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// nsAPI is what the ns commands need from meshd.
type nsAPI interface {
	Namespaces(ctx context.Context) ([]api.Namespace, error)
}

var _ nsAPI = (*api.Client)(nil)

func newNsCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "ns", Short: "The network namespaces meshd made on this node"}
	cmd.AddCommand(newNsLsCommand(c), newNsExecCommand(c))
	return cmd
}

func newNsLsCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "ls", Short: "List them", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runNsLs(ctx, cl, c.out)
		}),
	}
}

func runNsLs(ctx context.Context, cl nsAPI, out io.Writer) error {
	nss, err := cl.Namespaces(ctx)
	if err != nil {
		return err
	}
	tb := table{header: []string{"NAME", "KIND", "OWNER", "PATH"}}
	for _, n := range nss {
		tb.add(n.Name, n.Kind, n.Owner, n.Path)
	}
	return tb.write(out)
}

type nsExecOptions struct {
	name string   // as ns ls prints it
	argv []string // the command to run there
}

func newNsExecCommand(c *cli) *cobra.Command {
	var opts nsExecOptions
	return &cobra.Command{
		Use: "exec NAME -- COMMAND [ARG...]", Short: "Run a command in one of them", Args: cobra.MinimumNArgs(2),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.name, opts.argv = args[0], args[1:]
			return runNsExec(ctx, cl, c, opts)
		}),
	}
}

// runNsExec runs the command in the namespace's network with nsenter,
// passing its exit status through.
func runNsExec(ctx context.Context, cl nsAPI, m machine, opts nsExecOptions) error {
	nss, err := cl.Namespaces(ctx)
	if err != nil {
		return err
	}
	for _, n := range nss {
		if n.Name == opts.name {
			return passthrough(m, append([]string{"nsenter", "--net=" + n.Path, "--"}, opts.argv...))
		}
	}
	return fmt.Errorf("no namespace %q on this node (see meshctl ns ls)", opts.name)
}
