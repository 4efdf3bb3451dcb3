package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newServiceLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List services", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runServiceLs(ctx, cl, c.out, opts)
		}),
	}
	addListFlags(cmd, &opts)
	return cmd
}

// runServiceLs prints the services as docker service ls does.
func runServiceLs(ctx context.Context, cl serviceAPI, out io.Writer, opts listOptions) error {
	svcs, err := listByName(ctx, cl.Services, opts.filter, func(s api.Service) string { return s.Name })
	if err != nil {
		return err
	}
	return printList(out, opts, svcs, func(s api.Service) string { return shortID(s.ID) },
		[]string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"},
		func(s api.Service) []string {
			return []string{shortID(s.ID), s.Name, "replicated", fmt.Sprintf("%d/%d", s.Running, s.Replicas),
				imageOf(s.Image, s.Args), portsOf(s.Endpoint.Ports)}
		})
}

// portsOf is the PORTS column: "*:8888->80/tcp, …".
func portsOf(ports []api.PortConfig) string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return strings.Join(out, ", ")
}
