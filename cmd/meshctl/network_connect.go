package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// connectAPI is what network connect and disconnect need from meshd.
type connectAPI interface {
	ConnectNetwork(ctx context.Context, network string, req api.NetworkConnect) error
	DisconnectNetwork(ctx context.Context, network string, req api.NetworkConnect) error
}

var _ connectAPI = (*api.Client)(nil)

// networkConnectOptions are docker network connect's and disconnect's
// arguments and flags.
type networkConnectOptions struct {
	network, container string
	aliases            []string // connect --alias
	ip                 string   // connect --ip
	force              bool     // disconnect -f
}

func newNetworkConnectCommand(c *cli) *cobra.Command {
	var opts networkConnectOptions
	cmd := &cobra.Command{
		Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "Connect a container to a network", Args: exactArgs(2),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.network, opts.container = args[0], args[1]
			return checkIPv4(opts.ip)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runNetworkConnect(ctx, cl, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	f.StringArrayVar(&opts.aliases, "alias", nil, "Add network-scoped alias for the container (repeatable)")
	f.StringVar(&opts.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	return cmd
}

func newNetworkDisconnectCommand(c *cli) *cobra.Command {
	var opts networkConnectOptions
	cmd := &cobra.Command{
		Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: exactArgs(2),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.network, opts.container = args[0], args[1]
			return runNetworkDisconnect(ctx, cl, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// runNetworkConnect attaches the container; docker prints nothing.
func runNetworkConnect(ctx context.Context, cl connectAPI, opts networkConnectOptions) error {
	if err := checkIPv4(opts.ip); err != nil {
		return err
	}
	return cl.ConnectNetwork(ctx, opts.network, api.NetworkConnect{Container: opts.container,
		Attach: api.ContainerAttach{Network: opts.network, Aliases: opts.aliases, IP: opts.ip}})
}

// runNetworkDisconnect detaches the container; docker prints nothing.
func runNetworkDisconnect(ctx context.Context, cl connectAPI, opts networkConnectOptions) error {
	return cl.DisconnectNetwork(ctx, opts.network, api.NetworkConnect{Container: opts.container, Force: opts.force})
}

// checkIPv4 refuses an --ip that is not an IPv4 address, in docker's
// words; empty is none.
func checkIPv4(ip string) error {
	if ip == "" {
		return nil
	}
	if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() || a.IsUnspecified() {
		return fmt.Errorf("invalid IPv4 address: %s", api.Clip(ip))
	}
	return nil
}
