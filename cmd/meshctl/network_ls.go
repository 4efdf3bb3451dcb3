package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newNetworkLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runNetworkLs(ctx, cl, c.out, opts)
		}),
	}
	addListFlags(cmd, &opts, "only IDs", networkFilters.keys())
	addNoTruncFlag(cmd, &opts)
	return cmd
}

// networkFilters are docker network ls's, matched as its daemon does.
var networkFilters = filterSpec[api.NetworkResource]{
	"name":   func(n api.NetworkResource, v string) bool { return matchName(n.Name, v) },
	"id":     func(n api.NetworkResource, v string) bool { return matchPrefix(n.ID, v) },
	"driver": func(n api.NetworkResource, v string) bool { return n.Driver == v },
	"scope":  func(n api.NetworkResource, v string) bool { return n.Scope == v },
	"label":  noLabel[api.NetworkResource],
}

// runNetworkLs prints the networks as docker network ls does: the
// swarm's and the node's own; --format reaches .Subnet and .VNI too.
func runNetworkLs(ctx context.Context, cl networkAPI, out io.Writer, opts listOptions) error {
	nets, err := listFiltered(ctx, cl.Networks, networkFilters, opts.filter, nil)
	if err != nil {
		return err
	}
	rowOf := func(n api.NetworkResource) networkRow { return networkRow{NetworkResource: n, noTrunc: opts.noTrunc} }
	return printList(out, opts, nets, listView[api.NetworkResource, networkRow]{
		id:     func(n api.NetworkResource) string { return rowOf(n).ID() },
		header: []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE"},
		row: func(n api.NetworkResource) []string {
			return []string{rowOf(n).ID(), n.Name, n.Driver, n.Scope}
		},
		context: rowOf,
		fields:  networkFields,
	})
}
