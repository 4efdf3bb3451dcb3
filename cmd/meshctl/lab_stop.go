package main

import (
	"context"
	"fmt"
	"io"
	"syscall"

	"github.com/spf13/cobra"
)

func newLabStopCommand(c *cli) *cobra.Command {
	var opts labNodeOptions
	cmd := labNodeCommand(c, "stop NODE", "Stop a node's meshd (SIGTERM, or SIGKILL with --kill)", &opts,
		func(ctx context.Context, l labDaemons, opts labNodeOptions) error {
			return runLabStop(ctx, l, c.out, opts)
		})
	addKillFlag(cmd, &opts)
	return cmd
}

// runLabStop stops the node's meshd and waits until it has exited. A
// meshd already stopped is no error, as with docker stop.
func runLabStop(_ context.Context, l labDaemons, out io.Writer, opts labNodeOptions) error {
	n, err := daemonNode(l, opts.node)
	if err != nil {
		return err
	}
	sig, how := syscall.SIGTERM, "stopped"
	if opts.kill {
		sig, how = syscall.SIGKILL, "killed"
	}
	if err := l.StopNode(n.Name, sig); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: meshd %s\n", n.Name, how)
	return nil
}
