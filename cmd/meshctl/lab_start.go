package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/meshd/meshd/mesh/lab"

	"github.com/spf13/cobra"
)

func newLabStartCommand(c *cli) *cobra.Command {
	var opts labNodeOptions
	cmd := labNodeCommand(c, "start NODE", "Start a stopped node's meshd again; it comes back into its swarm by itself", &opts,
		func(ctx context.Context, l labDaemons, opts labNodeOptions) error {
			return runLabStart(ctx, l, c.out, opts)
		})
	addStartTimeoutFlag(cmd, &opts)
	return cmd
}

// runLabStart starts the node's meshd with the command line lab up gave
// it and waits until it answers. No swarm init or join is sent: meshd
// comes back into its swarm from its run dir, as after a reboot.
func runLabStart(ctx context.Context, l labDaemons, out io.Writer, opts labNodeOptions) error {
	n, err := daemonNode(l, opts.node)
	if err != nil {
		return err
	}
	if err := startAndWait(ctx, l, n, opts.timeout); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: meshd started\n", n.Name)
	return nil
}

// startAndWait starts n's meshd and waits until it answers on its socket,
// pointing at its log if it does not.
func startAndWait(ctx context.Context, l labDaemons, n lab.Node, timeout time.Duration) error {
	if err := l.StartNode(ctx, n.Name); err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	answers := func(ctx context.Context, n lab.Node) error {
		_, err := socketInfo(n).Info(ctx)
		return err
	}
	if err := l.WaitNode(ctx, n.Name, 200*time.Millisecond, answers); err != nil {
		return fmt.Errorf("%w (see %s)", err, n.Log)
	}
	return nil
}
