package main

import (
	"context"
	"fmt"
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
var networkFilters = filterSpec[api.Network]{
	"name":   func(n api.Network, v string) bool { return matchName(n.Name, v) },
	"id":     func(n api.Network, v string) bool { return matchPrefix(n.ID, v) },
	"driver": func(n api.Network, v string) bool { return n.Driver == v },
	"scope":  func(n api.Network, v string) bool { return n.Scope == v },
	"label":  noLabel[api.Network],
}

// runNetworkLs prints the networks as docker network ls does, with the
// subnet and VNI.
func runNetworkLs(ctx context.Context, cl networkAPI, out io.Writer, opts listOptions) error {
	nets, err := listFiltered(ctx, cl.Networks, networkFilters, opts.filter, nil)
	if err != nil {
		return err
	}
	rowOf := func(n api.Network) networkRow { return networkRow{Network: n, noTrunc: opts.noTrunc} }
	return printList(out, opts, nets, listView[api.Network, networkRow]{
		id:     func(n api.Network) string { return rowOf(n).ID() },
		header: []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "VNI"},
		row: func(n api.Network) []string {
			return []string{rowOf(n).ID(), n.Name, n.Driver, n.Scope, n.Subnet, fmt.Sprint(n.VNI)}
		},
		context: rowOf,
		fields:  networkFields,
	})
}
