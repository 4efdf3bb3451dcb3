package main

import (
	"fmt"

	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

type labExecOptions struct {
	lab  labOptions
	node string   // node1…, or client
	argv []string // the command to run there
}

func newLabExecCommand(c *cli) *cobra.Command {
	var opts labExecOptions
	return &cobra.Command{
		Use:   "exec NODE -- COMMAND [ARG...]",
		Short: "Run a command on a lab node (its network, with its run dir at /var/run/meshd)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.lab, opts.node, opts.argv = c.labOptions(), args[0], args[1:]
			return runLabExec(c, opts)
		},
	}
}

// runLabExec runs the command on the node as [lab.Lab.ExecCmd] does,
// passing its exit status through.
func runLabExec(m machine, opts labExecOptions) error {
	l, err := lab.Load(opts.lab.root, opts.lab.prefix)
	if err != nil {
		return err
	}
	if _, ok := l.Node(opts.node); !ok {
		return fmt.Errorf("no node %q in the lab", opts.node)
	}
	return m.run(l.ExecCmd(opts.node, opts.argv), "exec on "+opts.node)
}
