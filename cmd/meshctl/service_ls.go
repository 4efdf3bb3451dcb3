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
	addListFlags(cmd, &opts, "only IDs", serviceFilters.keys())
	return cmd
}

// serviceFilters are docker service ls's, matched as swarmkit does: names
// and IDs by prefix, the mode exactly (so an unknown mode matches none).
var serviceFilters = filterSpec[api.Service]{
	"name":  func(s api.Service, v string) bool { return matchPrefix(s.Name, v) },
	"id":    func(s api.Service, v string) bool { return matchPrefix(s.ID, v) },
	"mode":  func(s api.Service, v string) bool { return v == modeOf(s) },
	"label": noLabel[api.Service],
}

// runServiceLs prints the services as docker service ls does.
func runServiceLs(ctx context.Context, cl serviceAPI, out io.Writer, opts listOptions) error {
	svcs, err := listFiltered(ctx, cl.Services, serviceFilters, opts.filter, nil)
	if err != nil {
		return err
	}
	return printList(out, opts, svcs, listView[api.Service, serviceRow]{
		id:     func(s api.Service) string { return shortID(s.ID) },
		header: []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"},
		row: func(s api.Service) []string {
			r := serviceRow{s}
			return []string{r.ID(), s.Name, r.Mode(), r.Replicas(), r.Image(), r.Ports()}
		},
		context: func(s api.Service) serviceRow { return serviceRow{s} },
		fields:  serviceFields,
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
