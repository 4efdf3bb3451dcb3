package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// network and service rm differ only in the object, so they are one
// command here; node rm adds --force and calls runRm itself.

// newRmCommand returns "<group> rm REF [REF...]" for objects that rm, a
// method of [api.Client] such as (*api.Client).RemoveNetwork, removes.
func newRmCommand(c *cli, use, short string, rm func(*api.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Aliases: []string{"remove"}, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			return runRm(ctx, func(ctx context.Context, ref string) error { return rm(cl, ctx, ref) }, c.out, args)
		}),
	}
}

// runRm removes every ref with rm, printing the ones removed and
// returning the failures as one line. stop, start and restart report the
// same way, docker's, and pass their own call as rm.
func runRm(ctx context.Context, rm func(context.Context, string) error, out io.Writer, refs []string) error {
	var failed []string
	for _, ref := range refs {
		if err := rm(ctx, ref); err != nil {
			failed = append(failed, err.Error())
			continue
		}
		fmt.Fprintln(out, ref)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
