package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type serviceRollbackOptions struct {
	service string
	wait    waitOptions
}

func newServiceRollbackCommand(c *cli) *cobra.Command {
	var opts serviceRollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] SERVICE",
		Short: "Revert a service to its spec before the last update",
		Args:  exactArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.service = args[0]
			return runServiceRollback(ctx, cl, c.out, opts)
		}),
	}
	addWaitFlags(cmd, &opts.wait, "do not wait for the rollback", "how long to wait for the rollback to converge", updateWaitTimeout)
	return cmd
}

// runServiceRollback asks for the rollback, prints the service's name and
// why it rolls back, as docker does, then, unless detached, waits for the
// tasks to be replaced and the service to converge.
func runServiceRollback(ctx context.Context, cl serviceUpdateAPI, out io.Writer, opts serviceRollbackOptions) error {
	var ended map[string]bool
	if !opts.wait.detach {
		var err error
		if ended, err = endedTasks(ctx, cl, opts.service); err != nil {
			return err
		}
	}
	svc, err := cl.RollbackService(ctx, opts.service)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, opts.service)
	// Docker's line, whether or not any task has to be replaced.
	fmt.Fprintln(out, "rollback: manually requested rollback")
	if opts.wait.detach {
		return nil
	}
	return waitUpdated(ctx, cl, out, svc.ID, opts.wait.timeout, ended, waitRollback)
}
