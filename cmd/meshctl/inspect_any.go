package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// anyAPI is what the top-level inspect needs: every kind of object it
// may name, and whether this node serves the cluster's.
type anyAPI interface {
	Info(ctx context.Context) (api.Info, error)
	Container(ctx context.Context, ref string) (api.Container, error)
	Network(ctx context.Context, ref string) (api.NetworkResource, error)
	Node(ctx context.Context, ref string) (api.Node, error)
	Service(ctx context.Context, ref string) (api.Service, error)
	Task(ctx context.Context, ref string) (api.Task, error)
}

var _ anyAPI = (*api.Client)(nil)

// objectKind is one kind of object inspect looks for.
type objectKind struct {
	name  string
	swarm bool // a cluster object: only a manager has them
	get   func(anyAPI, context.Context, string) (any, error)
}

func getAs[T any](get func(anyAPI, context.Context, string) (T, error)) func(anyAPI, context.Context, string) (any, error) {
	return func(cl anyAPI, ctx context.Context, ref string) (any, error) { return get(cl, ctx, ref) }
}

// objectKinds are tried in docker inspect's order (docker/cli's
// inspectAll: container, image, volume, network, plugin, node, service,
// task, …), less the kinds meshd has not. Every node answers for its
// containers and networks, as Docker's; nodes, services and tasks are a
// manager's.
var objectKinds = []objectKind{
	{"container", false, getAs(anyAPI.Container)},
	{"network", false, getAs(anyAPI.Network)},
	{"node", true, getAs(anyAPI.Node)},
	{"service", true, func(cl anyAPI, ctx context.Context, ref string) (any, error) { return asResource(cl.Service)(ctx, ref) }},
	{"task", true, getAs(anyAPI.Task)},
}

// inspectAnyOptions are the flags and arguments of the top-level inspect.
type inspectAnyOptions struct {
	inspectOptions
	kind string // --type: only this kind; empty tries each
}

func newInspectAnyCommand(c *cli) *cobra.Command {
	var opts inspectAnyOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on meshd objects: tasks as containers, networks, nodes, services",
		Args:  minArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			opts.refs = args
			return checkKind(opts.kind)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runInspectAny(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	addFormatFlag(cmd, &opts.format)
	cmd.Flags().StringVar(&opts.kind, "type", "", "Return JSON for specified type (container, network, node, service, task)")
	return cmd
}

// checkKind refuses a --type inspect does not know, with docker's words.
func checkKind(kind string) error {
	if kind == "" || slices.ContainsFunc(objectKinds, func(k objectKind) bool { return k.name == kind }) {
		return nil
	}
	return fmt.Errorf("%q is not a valid value for --type", kind)
}

// runInspectAny prints each ref as the first kind that has it, as docker
// inspect does. With --type only that kind is asked, and its own error
// is the answer; without, a kind that has no such object is skipped, and
// so are the cluster's kinds on a node that is not a manager.
func runInspectAny(ctx context.Context, cl anyAPI, out io.Writer, opts inspectAnyOptions) error {
	if err := checkKind(opts.kind); err != nil {
		return err
	}
	manager := true
	if opts.kind == "" {
		info, err := cl.Info(ctx)
		if err != nil {
			return err
		}
		manager = info.ControlAvailable
	}
	get := func(ctx context.Context, ref string) (any, error) {
		for _, k := range objectKinds {
			switch {
			case opts.kind != "":
				if k.name == opts.kind {
					return k.get(cl, ctx, ref)
				}
				continue
			case k.swarm && !manager, ref == "":
				continue
			}
			v, err := k.get(cl, ctx, ref)
			if api.StatusCode(err) == http.StatusNotFound {
				continue
			}
			return v, err
		}
		return nil, fmt.Errorf("No such object: %s", api.Clip(ref))
	}
	return runInspect(ctx, get, out, opts.inspectOptions)
}
