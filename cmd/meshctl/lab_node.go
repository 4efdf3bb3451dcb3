package main

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// lab stop, start and restart act on one node's meshd, as docker stop,
// start and restart act on a container: to watch a swarm lose a node or a
// manager and get it back.

// labDaemons is what they need of a lab; *lab.Lab is the real one.
type labDaemons interface {
	Nodes() []lab.Node
	StopNode(name string, sig syscall.Signal) error
	StartNode(ctx context.Context, name string) error
	WaitNode(ctx context.Context, name string, interval time.Duration, ready func(context.Context, lab.Node) error) error
}

var _ labDaemons = (*lab.Lab)(nil)

type labNodeOptions struct {
	node    string
	kill    bool          // --kill: SIGKILL, as a crash, instead of SIGTERM
	timeout time.Duration // how long a started meshd has to answer
}

// labNodeCommand is the cobra command of lab stop, start or restart: it
// loads the lab and hands it to run with the node named.
func labNodeCommand(c *cli, use, short string, opts *labNodeOptions, run func(context.Context, labDaemons, labNodeOptions) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.node = args[0]
			l, err := lab.Load(c.labRoot, c.labPrefix)
			if err != nil {
				return err
			}
			return run(cmd.Context(), l, *opts)
		},
	}
}

func addKillFlag(cmd *cobra.Command, opts *labNodeOptions) {
	cmd.Flags().BoolVar(&opts.kill, "kill", false, "SIGKILL, as a crash, instead of SIGTERM")
}

func addStartTimeoutFlag(cmd *cobra.Command, opts *labNodeOptions) {
	cmd.Flags().DurationVar(&opts.timeout, flagTimeout, 60*time.Second, "how long to wait for meshd to answer")
}

// daemonNode returns the node of the lab called name that runs a meshd:
// not the client.
func daemonNode(l labDaemons, name string) (lab.Node, error) {
	nodes := l.Nodes()
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return lab.Node{}, fmt.Errorf("no meshd node %q in the lab: want one of %s", name, nodeNames(nodes))
}
