package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type swarmJoinOptions struct {
	token         string // --token
	advertiseAddr string // --advertise-addr; empty keeps meshd's own
	remote        string // HOST[:PORT] of a manager
}

func newSwarmJoinCommand(c *cli) *cobra.Command {
	var opts swarmJoinOptions
	cmd := &cobra.Command{
		Use: "join [OPTIONS] HOST[:PORT]", Short: "Join a swarm as a worker or a manager, as the token says", Args: exactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.remote = args[0]
			_, err := opts.request()
			return err
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runSwarmJoin(ctx, cl, c.out, opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.token, "token", "", "token for entry into the swarm (meshctl swarm join-token on a manager prints it)")
	f.StringVar(&opts.advertiseAddr, "advertise-addr", "", "address other nodes reach this one at (default: meshd's --advertise-addr)")
	return cmd
}

// request checks the flags and argument, before meshd is asked, and
// builds the join request.
func (o swarmJoinOptions) request() (api.SwarmJoin, error) {
	if o.token == "" {
		return api.SwarmJoin{}, errors.New("swarm join needs --token: run 'meshctl swarm join-token worker' (or manager) on a manager")
	}
	if err := api.CheckToken(o.token); err != nil {
		return api.SwarmJoin{}, err
	}
	remote, err := withDefaultPort(o.remote, api.DefaultAPIPort)
	if err != nil {
		return api.SwarmJoin{}, err
	}
	return api.SwarmJoin{RemoteAddr: remote, Token: o.token, AdvertiseAddr: o.advertiseAddr}, nil
}

// withDefaultPort returns addr as host:port, with port when addr has
// none, as docker's swarm join defaults to 2377. addr is a name, an IPv4
// address or an IPv6 one, bare or in brackets, with or without a port.
func withDefaultPort(addr string, port int) (string, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		host, p = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), strconv.Itoa(port)
		if a, err := netip.ParseAddr(host); strings.Contains(host, ":") && (err != nil || !a.Is6()) {
			return "", fmt.Errorf("invalid manager address %q: want HOST[:PORT]", addr)
		}
	}
	if host == "" {
		return "", fmt.Errorf("invalid manager address %q: no host", addr)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid manager address %q: port %q: want 1 to 65535", addr, p)
	}
	return net.JoinHostPort(host, p), nil
}

// runSwarmJoin joins the node to the swarm of the manager given and says
// in which role, which the token decides.
func runSwarmJoin(ctx context.Context, cl swarmAPI, out io.Writer, opts swarmJoinOptions) error {
	req, err := opts.request()
	if err != nil {
		return err
	}
	resp, err := cl.SwarmJoin(ctx, req)
	if err != nil {
		return err
	}
	switch resp.Role {
	case api.RoleManager, api.RoleWorker:
		fmt.Fprintf(out, "This node joined a swarm as a %s.\n", resp.Role)
	default:
		fmt.Fprintln(out, "This node joined a swarm.")
	}
	return nil
}
