package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// nodeAPI is what the node commands need from meshd.
type nodeAPI interface {
	Nodes(ctx context.Context) ([]api.Node, error)
	Node(ctx context.Context, ref string) (api.Node, error)
	UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error)
	RemoveNode(ctx context.Context, ref string, force bool) error
}

func newNodeCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage the cluster's nodes", Args: cobra.NoArgs}
	cmd.AddCommand(newNodeLsCommand(c), newNodeInspectCommand(c), newNodeUpdateCommand(c), newNodeRmCommand(c))
	return cmd
}

type nodeLsOptions struct {
	format string
	quiet  bool
}

func newNodeLsCommand(c *cli) *cobra.Command {
	var opts nodeLsOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List nodes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runNodeLs(cmd.Context(), cl, c.out, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.format, flagFormat, "f", "", "Go template or json")
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only IDs")
	return cmd
}

func runNodeLs(ctx context.Context, cl nodeAPI, out io.Writer, opts nodeLsOptions) error {
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return err
	}
	if opts.quiet {
		for _, n := range nodes {
			fmt.Fprintln(out, n.ID)
		}
		return nil
	}
	if opts.format != "" {
		return printEach(out, opts.format, nodes)
	}
	t := table{header: []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDR", "DATAPLANE"}}
	for _, n := range nodes {
		id := n.ID
		if n.Self {
			id += " *"
		}
		t.add(id, n.Hostname, n.Status, n.Availability, n.ManagerStatus, n.Addr, n.DataPlane)
	}
	return t.write(out)
}

func newNodeInspectCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "inspect NODE [NODE...]", Short: "Show nodes in detail", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runNodeInspect(cmd.Context(), cl, c.out, format, args)
		},
	}
	cmd.Flags().StringVarP(&format, flagFormat, "f", "", "Go template or json")
	return cmd
}

func runNodeInspect(ctx context.Context, cl nodeAPI, out io.Writer, format string, refs []string) error {
	var nodes []api.Node
	for _, ref := range refs {
		n, err := cl.Node(ctx, ref)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	return printInspect(out, format, nodes)
}

func newNodeUpdateCommand(c *cli) *cobra.Command {
	var avail string
	cmd := &cobra.Command{
		Use: "update --availability active|pause|drain NODE", Short: "Change a node's availability", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if avail == "" {
				return fmt.Errorf("nothing to update: give --availability active, pause or drain")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			n, err := cl.UpdateNode(cmd.Context(), args[0], api.NodeUpdate{Availability: avail})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, n.Hostname)
			return nil
		},
	}
	cmd.Flags().StringVar(&avail, "availability", "", "active, pause or drain")
	return cmd
}

func newNodeRmCommand(c *cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "rm NODE [NODE...]", Aliases: []string{"remove"}, Short: "Forget nodes that are down", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return removeEach(c, args, func(ref string) error { return cl.RemoveNode(cmd.Context(), ref, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even if the node is not down")
	return cmd
}
