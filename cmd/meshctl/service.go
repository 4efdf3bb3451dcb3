package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// serviceAPI is what the service commands need from meshd.
type serviceAPI interface {
	Services(ctx context.Context) ([]api.Service, error)
	Service(ctx context.Context, ref string) (api.Service, error)
	CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error)
	ScaleService(ctx context.Context, ref string, replicas int) (api.Service, error)
	RemoveService(ctx context.Context, ref string) error
	Tasks(ctx context.Context, service, node string) ([]api.Task, error)
}

func newServiceCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Manage services", Args: cobra.NoArgs}
	cmd.AddCommand(newServiceCreateCommand(c), newServiceLsCommand(c), newServicePsCommand(c),
		newServiceInspectCommand(c), newServiceScaleCommand(c), newServiceRmCommand(c))
	return cmd
}

type serviceCreateOptions struct {
	name         string
	replicas     int
	networks     []string
	aliases      []string
	endpointMode string
	publish      []string
	detach       bool
	timeout      time.Duration
}

func newServiceCreateCommand(c *cli) *cobra.Command {
	var opts serviceCreateOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [-- ARG...] | create [OPTIONS] -- COMMAND [ARG...]",
		Short: "Create a service from a built-in image or a host command",
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := serviceRequest(opts, cmd.Flags().Changed("replicas"), args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runServiceCreate(cmd.Context(), cl, c.out, req, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.name, "name", "", "service name")
	f.IntVar(&opts.replicas, "replicas", 1, "number of tasks")
	f.StringArrayVar(&opts.networks, "network", nil, "network to attach: NAME or name=NAME,alias=ALIAS (repeatable, in order)")
	f.StringArrayVar(&opts.aliases, "network-alias", nil, "alias of the service on every network it attaches")
	f.StringVar(&opts.endpointMode, "endpoint-mode", "vip", "vip or dnsrr")
	f.StringArrayVarP(&opts.publish, "publish", "p", nil, "publish a port: 8888:80[/udp] or mode=host,published=8080,target=80")
	f.BoolVarP(&opts.detach, "detach", "d", false, "do not wait for the tasks to run")
	f.DurationVar(&opts.timeout, "timeout", 60*time.Second, "how long to wait for the service to converge")
	return cmd
}

// serviceRequest turns flags and arguments into a create request: what
// stands before "--" is the image, what follows is its arguments (or the
// host command when no image is given).
func serviceRequest(opts serviceCreateOptions, replicasSet bool, args []string, dash int) (api.ServiceCreate, error) {
	req := api.ServiceCreate{Name: opts.name, EndpointMode: opts.endpointMode}
	if replicasSet {
		r := opts.replicas
		req.Replicas = &r
	}
	before, after := args, []string(nil)
	if dash >= 0 {
		before, after = args[:dash], args[dash:]
	}
	switch len(before) {
	case 0:
		if len(after) == 0 {
			return req, fmt.Errorf("service create needs an image or a command after --")
		}
	case 1:
		req.Image = before[0]
	default:
		return req, fmt.Errorf("unexpected arguments %q: put the command or image arguments after --", strings.Join(before[1:], " "))
	}
	req.Args = after
	if req.Name == "" {
		return req, fmt.Errorf("service create needs --name")
	}
	for _, n := range opts.networks {
		att, err := parseNetworkFlag(n)
		if err != nil {
			return req, err
		}
		att.Aliases = append(att.Aliases, opts.aliases...)
		req.Networks = append(req.Networks, att)
	}
	for _, p := range opts.publish {
		pc, err := parsePublish(p)
		if err != nil {
			return req, err
		}
		req.Ports = append(req.Ports, pc)
	}
	if len(opts.aliases) > 0 && len(opts.networks) == 0 {
		return req, fmt.Errorf("--network-alias needs a --network")
	}
	return req, nil
}

// parseNetworkFlag reads "ovnet" or "name=ovnet,alias=web,alias=www".
func parseNetworkFlag(s string) (api.NetworkAttachment, error) {
	if !strings.Contains(s, "=") {
		return api.NetworkAttachment{Target: s}, nil
	}
	var att api.NetworkAttachment
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name", "target":
			att.Target = v
		case "alias":
			att.Aliases = append(att.Aliases, v)
		default:
			return att, fmt.Errorf("invalid --network %q: unknown key %q (want name=, alias=)", s, k)
		}
	}
	if att.Target == "" {
		return att, fmt.Errorf("invalid --network %q: no name=", s)
	}
	return att, nil
}

func runServiceCreate(ctx context.Context, cl serviceAPI, out io.Writer, req api.ServiceCreate, opts serviceCreateOptions) error {
	svc, err := cl.CreateService(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, svc.ID)
	if opts.detach {
		return nil
	}
	return waitConverged(ctx, cl, out, svc.ID, opts.timeout)
}

// waitConverged waits until every task of the service runs, then prints
// docker's progress summary.
func waitConverged(ctx context.Context, cl serviceAPI, out io.Writer, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		svc, err := cl.Service(ctx, id)
		if err != nil {
			return err
		}
		tasks, err := cl.Tasks(ctx, id, "")
		if err != nil {
			return err
		}
		if svc.Running == svc.Replicas && len(tasks) == svc.Replicas {
			fmt.Fprintf(out, "overall progress: %d out of %d tasks\n", svc.Running, svc.Replicas)
			for _, t := range tasks {
				fmt.Fprintf(out, "%d/%d: %s\n", t.Slot, svc.Replicas, t.Status.State)
			}
			fmt.Fprintln(out, "verify: Service converged")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not converge in %s: %d out of %d tasks running%s", svc.Name, timeout, svc.Running, svc.Replicas, firstTaskError(tasks))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func firstTaskError(tasks []api.Task) string {
	for _, t := range tasks {
		if t.Status.Err != "" {
			return fmt.Sprintf(" (%s: %s)", t.Name(), t.Status.Err)
		}
	}
	return ""
}

func newServiceLsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List services", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			return runServiceLs(cmd.Context(), cl, c.out, opts)
		},
	}
	addListFlags(cmd, &opts)
	return cmd
}

func runServiceLs(ctx context.Context, cl serviceAPI, out io.Writer, opts listOptions) error {
	names, err := nameFilter(opts.filter)
	if err != nil {
		return err
	}
	all, err := cl.Services(ctx)
	if err != nil {
		return err
	}
	var svcs []api.Service
	for _, s := range all {
		if matchName(names, s.Name) {
			svcs = append(svcs, s)
		}
	}
	switch {
	case opts.quiet:
		for _, s := range svcs {
			fmt.Fprintln(out, shortID(s.ID))
		}
		return nil
	case opts.format != "":
		return printEach(out, opts.format, svcs)
	}
	t := table{header: []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"}}
	for _, s := range svcs {
		t.add(shortID(s.ID), s.Name, "replicated", fmt.Sprintf("%d/%d", s.Running, s.Replicas), imageOf(s.Image, s.Args), portsOf(s.Endpoint.Ports))
	}
	return t.write(out)
}

func imageOf(image string, args []string) string {
	if image == "" && len(args) > 0 {
		return "-- " + strings.Join(args, " ")
	}
	return image
}

func portsOf(ports []api.PortConfig) string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return strings.Join(out, ", ")
}
