package main

import "github.com/spf13/cobra"

// The lab commands build and use a cluster on this machine (package lab);
// they do not talk to meshd, except lab up to see every node Ready.

func newLabCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "lab", Short: "A whole cluster on this machine, in network namespaces"}
	cmd.AddCommand(newLabUpCommand(c), newLabDownCommand(c), newLabExecCommand(c))
	return cmd
}

// labOptions say which lab: --lab-root and --lab-prefix.
type labOptions struct {
	root, prefix string
}

func (c *cli) labOptions() labOptions { return labOptions{root: c.labRoot, prefix: c.labPrefix} }
