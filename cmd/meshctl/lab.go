package main

import "github.com/spf13/cobra"

// The lab commands build and use a cluster on this machine (package lab);
// they talk to meshd only to form the swarm and see every node ready (lab
// up) and to see a started meshd answer (lab start, restart).

func newLabCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "lab", Short: "A whole cluster on this machine, in network namespaces"}
	cmd.AddCommand(newLabUpCommand(c), newLabDownCommand(c), newLabExecCommand(c),
		newLabStopCommand(c), newLabStartCommand(c), newLabRestartCommand(c))
	return cmd
}

// labOptions say which lab: --lab-root and --lab-prefix.
type labOptions struct {
	root, prefix string
}

func (c *cli) labOptions() labOptions { return labOptions{root: c.labRoot, prefix: c.labPrefix} }
