package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// serviceLogsAPI is what service logs needs: the output of a service's
// tasks, gathered by the manager from every node.
type serviceLogsAPI interface {
	ServiceLogs(ctx context.Context, ref string, o api.ServiceLogsOptions) (*api.LogStream, error)
}

var _ serviceLogsAPI = (*api.Client)(nil)

// serviceLogsOptions are docker service logs's flags that mean something
// here. -t/--timestamps is left out: a task's output file keeps no time
// for its lines.
type serviceLogsOptions struct {
	target    string // SERVICE or TASK
	follow    bool   // -f: keep printing until interrupted
	tail      string // --tail: the last N lines of each task, or all
	noTaskIDs bool   // --no-task-ids: www.1@node1 instead of www.1.<ID>@node1
	noTrunc   bool   // --no-trunc: the whole task ID
}

func newServiceLogsCommand(c *cli) *cobra.Command {
	var opts serviceLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] SERVICE|TASK",
		Short: "Fetch the logs of a service or task",
		Args:  exactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.target = args[0]
			return checkTail(opts.tail)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runServiceLogs(ctx, cl, c.out, c.errOut, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	f.BoolVarP(&opts.follow, "follow", "f", false, "Follow log output")
	f.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.BoolVar(&opts.noTaskIDs, "no-task-ids", false, "Do not include task IDs in output")
	f.BoolVar(&opts.noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// runServiceLogs prints each line of the tasks' output as docker does,
// "www.1.<task ID>@node1    | line", as the nodes send them, until every
// node has sent its tail, or, with -f, until meshctl is interrupted. A
// node that did not answer is named on errOut.
func runServiceLogs(ctx context.Context, cl serviceLogsAPI, out, errOut io.Writer, opts serviceLogsOptions) error {
	if err := checkTail(opts.tail); err != nil {
		return err
	}
	tail := opts.tail
	if n, err := strconv.Atoi(tail); err == nil && n < 0 {
		tail = "all"
	}
	s, err := cl.ServiceLogs(ctx, opts.target, api.ServiceLogsOptions{Tail: tail, Follow: opts.follow})
	if err != nil {
		return err
	}
	defer s.Close()
	width := len(strconv.Itoa(s.Header.Replicas))
	for {
		rec, err := s.Next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && ctx.Err() != nil:
			return nil // interrupted
		case err != nil:
			return fmt.Errorf("read logs: %w", err)
		case rec.Warning != "":
			fmt.Fprintln(errOut, "warning:", rec.Warning)
		default:
			fmt.Fprintf(out, "%s    | %s\n", logContext(rec, width, opts), rec.Line)
		}
	}
}

// logContext is docker's prefix of a line: the task's name, its ID (cut
// to 12 characters unless --no-trunc; left out with --no-task-ids), "@"
// its node, padded so that slots narrower than the replica count line
// up (docker pads after the node name).
func logContext(rec api.LogRecord, width int, opts serviceLogsOptions) string {
	name := rec.TaskName
	if !opts.noTaskIDs {
		id := rec.TaskID
		if !opts.noTrunc {
			id = shortID(id)
		}
		name += "." + id
	}
	pad := 0
	if rec.Slot > 0 {
		pad = max(0, width-len(strconv.Itoa(rec.Slot)))
	}
	return name + "@" + rec.NodeName + strings.Repeat(" ", pad)
}
