package main

import (
	"cmp"
	"context"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newNodeLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List nodes", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runNodeLs(ctx, cl, c.out, opts)
		}),
	}
	addListFlags(cmd, &opts, "only IDs", nodeFilters.keys())
	return cmd
}

// membershipAccepted is the membership of every node meshd lists: a node
// is in the swarm once it has joined, and none waits for acceptance.
const membershipAccepted = "accepted"

// nodeFilters are docker node ls's, matched as swarmkit does: hostnames
// and IDs by prefix, the role and membership exactly, whatever their case.
var nodeFilters = filterSpec[api.Node]{
	"name":       func(n api.Node, v string) bool { return matchPrefix(n.Hostname, v) },
	"id":         func(n api.Node, v string) bool { return matchPrefix(n.ID, v) },
	"role":       func(n api.Node, v string) bool { return strings.EqualFold(n.Role, v) },
	"membership": func(_ api.Node, v string) bool { return strings.EqualFold(v, membershipAccepted) },
	"label":      noLabel[api.Node],
}

// runNodeLs prints the nodes as docker node ls does, the answering node
// marked with a *.
func runNodeLs(ctx context.Context, cl nodeAPI, out io.Writer, opts listOptions) error {
	nodes, err := listFiltered(ctx, cl.Nodes, nodeFilters, opts.filter, func(f filters) error {
		return cmp.Or(f.oneOf("role", api.RoleManager, api.RoleWorker), f.oneOf("membership", membershipAccepted, "pending"))
	})
	if err != nil {
		return err
	}
	return printList(out, opts, nodes, listView[api.Node, nodeRow]{
		id:     func(n api.Node) string { return n.ID },
		header: []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDR", "DATAPLANE"},
		row: func(n api.Node) []string {
			id := n.ID
			if n.Self {
				id += " *"
			}
			return []string{id, n.Hostname, n.Status, n.Availability, n.ManagerStatus, n.Addr, n.DataPlane}
		},
		context: func(n api.Node) nodeRow { return nodeRow{n} },
		fields:  nodeFields,
	})
}
