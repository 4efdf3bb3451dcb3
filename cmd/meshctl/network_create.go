package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type networkCreateOptions struct {
	name                             string
	driver, subnet, gateway, ipRange string
	aux                              []string // --aux-address name=ip
	internal, attachable             bool
}

func newNetworkCreateCommand(c *cli) *cobra.Command {
	var opts networkCreateOptions
	cmd := &cobra.Command{
		Use: "create [OPTIONS] NETWORK", Short: "Create a network: a bridge on this node, or an overlay across the swarm", Args: cobra.ExactArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.name = args[0]
			return runNetworkCreate(ctx, cl, c.out, opts)
		}),
	}
	f := cmd.Flags()
	// bridge by default, as docker: an overlay, for services across the
	// swarm, is asked for with -d overlay.
	f.StringVarP(&opts.driver, "driver", "d", api.DriverBridge, "network driver: bridge (on this node) or overlay (across the swarm, for services)")
	f.StringVar(&opts.subnet, "subnet", "", "subnet in CIDR format (default: the next free one of the driver's pool)")
	f.StringVar(&opts.gateway, "gateway", "", "gateway address (default: the first address of the subnet)")
	f.StringVar(&opts.ipRange, "ip-range", "", "allocate container addresses from this sub-range")
	f.StringArrayVar(&opts.aux, "aux-address", nil, "reserved address name=ip (repeatable)")
	f.BoolVar(&opts.internal, "internal", false, "no outside access: containers only reach the network")
	f.BoolVar(&opts.attachable, "attachable", false, "allow standalone containers to attach (overlay)")
	return cmd
}

// runNetworkCreate creates the network and prints its ID.
func runNetworkCreate(ctx context.Context, cl networkAPI, out io.Writer, opts networkCreateOptions) error {
	req := api.NetworkCreate{Name: opts.name, Driver: opts.driver, Subnet: opts.subnet, Gateway: opts.gateway,
		IPRange: opts.ipRange, Internal: opts.internal, Attachable: opts.attachable}
	if req.Driver == "" {
		req.Driver = api.DriverBridge
	}
	for _, a := range opts.aux {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			return fmt.Errorf("invalid --aux-address %q: want name=ip", a)
		}
		if req.AuxAddresses == nil {
			req.AuxAddresses = map[string]string{}
		}
		req.AuxAddresses[k] = v
	}
	n, err := cl.CreateNetwork(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, n.ID)
	return nil
}
