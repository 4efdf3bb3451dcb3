package main

import (
	"context"
	"fmt"
	"io"
	"syscall"

	"github.com/spf13/cobra"
)

func newLabRestartCommand(c *cli) *cobra.Command {
	var opts labNodeOptions
	cmd := labNodeCommand(c, "restart NODE", "Stop a node's meshd and start it again", &opts,
		func(ctx context.Context, l labDaemons, opts labNodeOptions) error {
			return runLabRestart(ctx, l, c.out, opts)
		})
	addKillFlag(cmd, &opts)
	addStartTimeoutFlag(cmd, &opts)
	return cmd
}

// runLabRestart is lab stop then lab start.
func runLabRestart(ctx context.Context, l labDaemons, out io.Writer, opts labNodeOptions) error {
	n, err := daemonNode(l, opts.node)
	if err != nil {
		return err
	}
	sig := syscall.SIGTERM
	if opts.kill {
		sig = syscall.SIGKILL
	}
	if err := l.StopNode(n.Name, sig); err != nil {
		return err
	}
	if err := startAndWait(ctx, l, n, opts.timeout); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: meshd restarted\n", n.Name)
	return nil
}
