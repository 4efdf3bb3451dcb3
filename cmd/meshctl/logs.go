package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// logsAPI is what logs needs: a task's output on the answering node.
type logsAPI interface {
	TaskLogs(ctx context.Context, ref, tail string, follow bool) (io.ReadCloser, error)
}

var _ logsAPI = (*api.Client)(nil)

// logsOptions are docker logs's flags that mean something for a task.
type logsOptions struct {
	task   string // CONTAINER: see [api.MatchContainer]
	follow bool   // -f: keep printing until the task ends
	tail   string // --tail: the last N lines, or all
}

func newLogsCommand(c *cli) *cobra.Command {
	var opts logsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Print the output of a task of this node",
		Args:  exactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.task = args[0]
			return checkTail(opts.tail)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runLogs(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	f.BoolVarP(&opts.follow, "follow", "f", false, "Follow log output")
	f.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

// checkTail refuses a --tail that is neither a count nor "all"; a
// negative count is all, as docker has it.
func checkTail(tail string) error {
	if tail == "" || tail == "all" {
		return nil
	}
	if _, err := strconv.Atoi(tail); err != nil {
		return fmt.Errorf("invalid value for --tail: %s", api.Quote(tail))
	}
	return nil
}

// runLogs copies the task's output as it is, until it ends (with -f) or
// meshctl is interrupted.
func runLogs(ctx context.Context, cl logsAPI, out io.Writer, opts logsOptions) error {
	if err := checkTail(opts.tail); err != nil {
		return err
	}
	tail := opts.tail
	if n, err := strconv.Atoi(tail); err == nil && n < 0 {
		tail = "all"
	}
	r, err := cl.TaskLogs(ctx, opts.task, tail, opts.follow)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(out, r); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("read logs: %w", err)
	}
	return nil
}
