package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// networkAPI is what the network commands need from meshd.
type networkAPI interface {
	Networks(ctx context.Context) ([]api.Network, error)
	Network(ctx context.Context, ref string) (api.Network, error)
	CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
}

func newNetworkCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage overlay networks", Args: cobra.NoArgs}
	cmd.AddCommand(newNetworkCreateCommand(c), newNetworkLsCommand(c), newNetworkInspectCommand(c), newNetworkRmCommand(c))
	return cmd
}

type networkCreateOptions struct {
	driver, subnet, gateway, ipRange string
	aux                              []string
	internal, attachable             bool
}

func newNetworkCreateCommand(c *cli) *cobra.Command {
	var opts networkCreateOptions
	cmd := &cobra.Command{
		Use: "create [OPTIONS] NETWORK", Short: "Create an overlay network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runNetworkCreate(cmd.Context(), cl, c.out, args[0], opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.driver, "driver", "d", "overlay", "network driver (overlay)")
	f.StringVar(&opts.subnet, "subnet", "", "subnet in CIDR format (default: the next /24 of 10.0.0.0/8)")
	f.StringVar(&opts.gateway, "gateway", "", "gateway address (default: the first address of the subnet)")
	f.StringVar(&opts.ipRange, "ip-range", "", "allocate task addresses from this sub-range")
	f.StringArrayVar(&opts.aux, "aux-address", nil, "reserved address name=ip (repeatable)")
	f.BoolVar(&opts.internal, "internal", false, "no gateway bridge: tasks only reach the network")
	f.BoolVar(&opts.attachable, "attachable", false, "allow standalone tasks to attach")
	return cmd
}

func runNetworkCreate(ctx context.Context, cl networkAPI, out io.Writer, name string, opts networkCreateOptions) error {
	req := api.NetworkCreate{Name: name, Driver: opts.driver, Subnet: opts.subnet, Gateway: opts.gateway,
		IPRange: opts.ipRange, Internal: opts.internal, Attachable: opts.attachable}
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

type listOptions struct {
	format string
	quiet  bool
	filter []string
}

func newNetworkLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runNetworkLs(cmd.Context(), cl, c.out, opts)
		},
	}
	addListFlags(cmd, &opts)
	return cmd
}

func addListFlags(cmd *cobra.Command, opts *listOptions) {
	cmd.Flags().StringVarP(&opts.format, flagFormat, "f", "", "Go template or json")
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only IDs")
	cmd.Flags().StringArrayVar(&opts.filter, "filter", nil, "name=VALUE (substring), repeatable")
}

// nameFilter returns the name= filters, or an error for other keys.
func nameFilter(filters []string) ([]string, error) {
	var names []string
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != "name" {
			return nil, fmt.Errorf("invalid filter %q: meshctl filters by name=VALUE", f)
		}
		names = append(names, v)
	}
	return names, nil
}

func matchName(names []string, name string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if strings.Contains(name, n) {
			return true
		}
	}
	return false
}

func runNetworkLs(ctx context.Context, cl networkAPI, out io.Writer, opts listOptions) error {
	names, err := nameFilter(opts.filter)
	if err != nil {
		return err
	}
	all, err := cl.Networks(ctx)
	if err != nil {
		return err
	}
	var nets []api.Network
	for _, n := range all {
		if matchName(names, n.Name) {
			nets = append(nets, n)
		}
	}
	switch {
	case opts.quiet:
		for _, n := range nets {
			fmt.Fprintln(out, shortID(n.ID))
		}
		return nil
	case opts.format != "":
		return printEach(out, opts.format, nets)
	}
	t := table{header: []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "VNI"}}
	for _, n := range nets {
		t.add(shortID(n.ID), n.Name, n.Driver, n.Scope, n.Subnet, fmt.Sprint(n.VNI))
	}
	return t.write(out)
}

// shortID is the 12-character ID docker prints in lists.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newNetworkInspectCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "inspect NETWORK [NETWORK...]", Short: "Show networks in detail", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var nets []api.Network
			for _, ref := range args {
				n, err := cl.Network(cmd.Context(), ref)
				if err != nil {
					return err
				}
				nets = append(nets, n)
			}
			return printInspect(c.out, format, nets)
		},
	}
	cmd.Flags().StringVarP(&format, flagFormat, "f", "", "Go template or json")
	return cmd
}

func newNetworkRmCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "rm NETWORK [NETWORK...]", Aliases: []string{"remove"}, Short: "Remove networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return removeEach(c, args, func(ref string) error { return cl.RemoveNetwork(cmd.Context(), ref) })
		},
	}
}

// removeEach removes every ref, printing the ones removed and returning
// the failures as one line.
func removeEach(c *cli, refs []string, rm func(string) error) error {
	var failed []string
	for _, ref := range refs {
		if err := rm(ref); err != nil {
			failed = append(failed, err.Error())
			continue
		}
		fmt.Fprintln(c.out, ref)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
