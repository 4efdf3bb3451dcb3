package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type serviceCreateOptions struct {
	name         string
	mode         string // --mode: replicated or global
	replicas     int
	constraints  []string
	networks     []string
	aliases      []string
	endpointMode string
	publish      []string
	restart      restartOptions
	env          []string
	update       updateConfigFlags
	rollback     updateConfigFlags
	wait         waitOptions
	// req is what the flags and arguments ask for, built before meshd is
	// reached (see serviceRequest).
	req api.ServiceCreate
}

func newServiceCreateCommand(c *cli) *cobra.Command {
	var opts serviceCreateOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...] | create [OPTIONS] -- COMMAND [ARG...]",
		Short: "Create a service from a built-in image or a host command",
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			opts.req, err = createRequest(opts, cmd.Flags(), args, cmd.ArgsLenAtDash(), os.LookupEnv)
			return err
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runServiceCreate(ctx, cl, c.out, opts)
		}),
	}
	addServiceCreateFlags(cmd, &opts)
	return cmd
}

func addServiceCreateFlags(cmd *cobra.Command, opts *serviceCreateOptions) {
	f := cmd.Flags()
	f.SetInterspersed(false) // the image's arguments are not meshctl's flags
	f.StringVar(&opts.name, "name", "", "service name")
	f.StringVar(&opts.mode, "mode", api.ModeReplicated, "service mode (replicated or global)")
	f.IntVar(&opts.replicas, "replicas", 1, "number of tasks")
	f.StringArrayVar(&opts.constraints, "constraint", nil, "placement constraint: node.hostname|node.id|node.role|node.labels.KEY ==|!= VALUE (repeatable)")
	f.StringArrayVar(&opts.networks, "network", nil, "network to attach: NAME or name=NAME,alias=ALIAS (repeatable, in order)")
	f.StringArrayVar(&opts.aliases, "network-alias", nil, "alias of the service on every network it attaches")
	f.StringVar(&opts.endpointMode, "endpoint-mode", "vip", "vip or dnsrr")
	f.StringArrayVarP(&opts.publish, "publish", "p", nil, "publish a port: 8888:80[/udp] or mode=host,published=8080,target=80")
	f.StringVar(&opts.restart.condition, restartFlags[0], api.RestartAny, "restart when a task exits: none, on-failure or any")
	f.DurationVar(&opts.restart.delay, restartFlags[1], api.DefaultRestartDelay, "delay between restarts")
	f.IntVar(&opts.restart.maxAttempts, restartFlags[2], 0, "restarts of a slot before giving up (0: no limit)")
	f.DurationVar(&opts.restart.window, restartFlags[3], 0, "window the restarts are counted in (0: all of them)")
	f.StringArrayVarP(&opts.env, "env", "e", nil, "set an environment variable: KEY=VALUE (repeatable)")
	addUpdateConfigFlags(cmd, &opts.update, "update")
	addUpdateConfigFlags(cmd, &opts.rollback, "rollback")
	addWaitFlags(cmd, &opts.wait, "do not wait for the tasks to run", "how long to wait for the service to converge", defaultWaitTimeout)
}

// createRequest is the request the flags and arguments ask for; lookup
// reads this machine's environment, for -e KEY.
func createRequest(opts serviceCreateOptions, flags *pflag.FlagSet, args []string, dash int, lookup func(string) (string, bool)) (api.ServiceCreate, error) {
	for _, name := range restartFlags {
		opts.restart.set = opts.restart.set || flags.Changed(name)
	}
	req, err := serviceRequest(opts, flags.Changed("replicas"), args, dash)
	if err != nil {
		return req, err
	}
	if req.Env, err = envList(opts.env, lookup); err != nil {
		return req, err
	}
	if req.UpdateConfig, err = opts.update.config(flags); err != nil {
		return req, err
	}
	req.RollbackConfig, err = opts.rollback.config(flags)
	return req, err
}

// restartFlags are the restart policy's flags, as docker names them.
var restartFlags = []string{"restart-condition", "restart-delay", "restart-max-attempts", "restart-window"}

// restartOptions are the restart policy's flags; set says whether any was
// given (none: meshd's default, Docker's).
type restartOptions struct {
	set         bool
	condition   string
	delay       time.Duration
	maxAttempts int
	window      time.Duration
}

// policy checks the flags as meshd would, so that a bad value is refused
// before anything is sent.
func (o restartOptions) policy() (*api.RestartPolicy, error) {
	if !o.set {
		return nil, nil
	}
	switch {
	case o.condition != api.RestartNone && o.condition != api.RestartOnFailure && o.condition != api.RestartAny:
		return nil, fmt.Errorf("invalid --restart-condition %q: want none, on-failure or any", o.condition)
	case o.delay < 0:
		return nil, fmt.Errorf("invalid --restart-delay %s: want 0 or more", o.delay)
	case o.maxAttempts < 0:
		return nil, fmt.Errorf("invalid --restart-max-attempts %d: want 0 (no limit) or more", o.maxAttempts)
	case o.window < 0:
		return nil, fmt.Errorf("invalid --restart-window %s: want 0 or more", o.window)
	}
	return &api.RestartPolicy{Condition: o.condition, Delay: o.delay, MaxAttempts: o.maxAttempts, Window: o.window}, nil
}

// serviceRequest turns flags and arguments into a create request: what
// stands before "--" is the image, what follows is its arguments (or the
// host command when no image is given).
func serviceRequest(opts serviceCreateOptions, replicasSet bool, args []string, dash int) (api.ServiceCreate, error) {
	req := api.ServiceCreate{Name: opts.name, EndpointMode: opts.endpointMode, Constraints: opts.constraints}
	switch opts.mode {
	case "", api.ModeReplicated:
	case api.ModeGlobal:
		req.Mode = api.ModeGlobal
		if replicasSet {
			return req, fmt.Errorf("replicas can only be used with replicated mode") // docker's words
		}
	default:
		return req, fmt.Errorf("invalid --mode %q: want replicated or global", opts.mode)
	}
	if replicasSet {
		r := opts.replicas
		req.Replicas = &r
	}
	// IMAGE [COMMAND] [ARG...] as docker's, or -- COMMAND [ARG...] for a
	// host command. Flags end at the image, so an argument of the
	// command may look like a flag; an old "IMAGE -- ARG..." still works.
	before, after := args, []string(nil)
	if dash >= 0 {
		before, after = args[:dash], args[dash:]
	}
	if len(before) == 0 && len(after) == 0 {
		return req, fmt.Errorf("service create needs an image or a command after --")
	}
	if len(before) > 0 {
		req.Image, before = normalizeImage(before[0]), before[1:]
		if len(before) > 0 && before[0] == "--" {
			before = before[1:]
		}
	}
	req.Args = append(before, after...)
	if len(req.Args) == 0 {
		req.Args = nil
	}
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
	policy, err := opts.restart.policy()
	if err != nil {
		return req, err
	}
	req.RestartPolicy = policy
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

// runServiceCreate sends opts.req, prints the new service's ID and,
// unless detached, waits for it to converge.
func runServiceCreate(ctx context.Context, cl serviceAPI, out io.Writer, opts serviceCreateOptions) error {
	svc, err := cl.CreateService(ctx, opts.req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, svc.ID)
	if opts.wait.detach {
		return nil
	}
	return waitConverged(ctx, cl, out, svc.ID, opts.wait.timeout, nil)
}

// normalizeImage names an image as docker's CLI sends it: with the tag
// latest when the reference has neither a tag nor a digest, so that
// service ls and ps show "containous/whoami:latest".
func normalizeImage(ref string) string {
	name := ref[strings.LastIndexByte(ref, '/')+1:]
	if ref == "" || strings.ContainsAny(name, ":@") {
		return ref
	}
	return ref + ":latest"
}
