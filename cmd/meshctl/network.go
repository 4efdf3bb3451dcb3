package main

import (
	"context"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// networkAPI is what network create and ls need from meshd; inspect and
// rm take the one method they call (see newInspectCommand).
type networkAPI interface {
	Networks(ctx context.Context) ([]api.NetworkResource, error)
	CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error)
}

var _ networkAPI = (*api.Client)(nil)

func newNetworkCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkLsCommand(c),
		newInspectCommand(c, "inspect NETWORK [NETWORK...]", "Show networks in detail, with their endpoints on this node", (*api.Client).Network),
		newRmCommand(c, "rm NETWORK [NETWORK...]", "Remove networks", (*api.Client).RemoveNetwork),
		newNetworkConnectCommand(c), newNetworkDisconnectCommand(c))
	return cmd
}
