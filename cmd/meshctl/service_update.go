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

// serviceUpdateAPI is what service update and rollback need from meshd.
type serviceUpdateAPI interface {
	serviceAPI
	UpdateService(ctx context.Context, ref string, u api.ServiceUpdate) (api.Service, error)
	RollbackService(ctx context.Context, ref string) (api.Service, error)
}

var _ serviceUpdateAPI = (*api.Client)(nil)

type serviceUpdateOptions struct {
	service    string
	image      string
	replicas   int
	envAdd     []string
	envRm      []string
	publishAdd []string
	publishRm  []string
	networkAdd []string
	networkRm  []string
	force      bool
	rollback   bool // --rollback: service rollback
	update     updateConfigFlags
	rollbackC  updateConfigFlags
	wait       waitOptions
	// req is what the flags ask for, built before meshd is reached (see
	// updateRequest).
	req api.ServiceUpdate
}

// updateWaitTimeout is how long update and rollback wait by default: a
// rolling update takes a batch's start, reach and delay per batch.
const updateWaitTimeout = 5 * time.Minute

func newServiceUpdateCommand(c *cli) *cobra.Command {
	var opts serviceUpdateOptions
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Update a service, replacing its tasks a batch at a time",
		Args:  exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			opts.service = args[0]
			opts.req, err = updateRequest(opts, cmd.Flags(), os.LookupEnv)
			return err
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runServiceUpdate(ctx, cl, c.out, opts)
		}),
	}
	addServiceUpdateFlags(cmd, &opts)
	return cmd
}

func addServiceUpdateFlags(cmd *cobra.Command, opts *serviceUpdateOptions) {
	f := cmd.Flags()
	f.StringVar(&opts.image, "image", "", "service image (a built-in image)")
	f.IntVar(&opts.replicas, "replicas", 0, "number of tasks")
	f.StringArrayVar(&opts.envAdd, "env-add", nil, "add or update an environment variable: KEY=VALUE (repeatable)")
	f.StringArrayVar(&opts.envRm, "env-rm", nil, "remove an environment variable: KEY (repeatable)")
	f.StringArrayVar(&opts.publishAdd, "publish-add", nil, "publish a port: 8888:80[/udp] or mode=host,published=8080,target=80")
	f.StringArrayVar(&opts.publishRm, "publish-rm", nil, "unpublish a port: PUBLISHED[/udp] or PUBLISHED:TARGET")
	f.StringArrayVar(&opts.networkAdd, "network-add", nil, "attach a network: NAME or name=NAME,alias=ALIAS")
	f.StringArrayVar(&opts.networkRm, "network-rm", nil, "detach a network")
	f.BoolVar(&opts.force, "force", false, "replace the tasks even if nothing changed")
	f.BoolVar(&opts.rollback, "rollback", false, "roll back to the previous spec")
	addUpdateConfigFlags(cmd, &opts.update, "update")
	addUpdateConfigFlags(cmd, &opts.rollbackC, "rollback")
	addWaitFlags(cmd, &opts.wait, "do not wait for the update", "how long to wait for the update to converge", updateWaitTimeout)
}

// updateConfigFlags are the --update-* or --rollback-* flags.
type updateConfigFlags struct {
	prefix        string // update or rollback
	parallelism   uint64
	delay         time.Duration
	order         string
	failureAction string
	monitor       time.Duration
}

func addUpdateConfigFlags(cmd *cobra.Command, o *updateConfigFlags, prefix string) {
	o.prefix = prefix
	d := api.DefaultUpdateConfig()
	actions := "pause, continue or rollback"
	if prefix == "rollback" {
		actions = "pause or continue"
	}
	f := cmd.Flags()
	f.Uint64Var(&o.parallelism, prefix+"-parallelism", d.Parallelism, "tasks replaced at a time (0: all at once)")
	f.DurationVar(&o.delay, prefix+"-delay", d.Delay, "delay between batches")
	f.StringVar(&o.order, prefix+"-order", d.Order, "stop-first or start-first")
	f.StringVar(&o.failureAction, prefix+"-failure-action", d.FailureAction, "on a task's failure: "+actions)
	f.DurationVar(&o.monitor, prefix+"-monitor", d.Monitor, "how long after each task's update a failure still counts")
}

// change is what the flags given change, checked as meshd would check
// it; nil when none was given.
func (o updateConfigFlags) change(flags *pflag.FlagSet) (*api.UpdateConfigChange, error) {
	var ch api.UpdateConfigChange
	set := false
	if flags.Changed(o.prefix + "-parallelism") {
		ch.Parallelism, set = &o.parallelism, true
	}
	if flags.Changed(o.prefix + "-delay") {
		if o.delay < 0 {
			return nil, fmt.Errorf("invalid --%s-delay %s: want 0 or more", o.prefix, o.delay)
		}
		ch.Delay, set = &o.delay, true
	}
	if flags.Changed(o.prefix + "-order") {
		if o.order != api.OrderStopFirst && o.order != api.OrderStartFirst {
			return nil, fmt.Errorf("invalid --%s-order %q: want stop-first or start-first", o.prefix, o.order)
		}
		ch.Order, set = &o.order, true
	}
	if flags.Changed(o.prefix + "-failure-action") {
		ok := o.failureAction == api.ActionPause || o.failureAction == api.ActionContinue ||
			(o.failureAction == api.ActionRollback && o.prefix == "update")
		if !ok {
			return nil, fmt.Errorf("invalid --%s-failure-action %q: want %s", o.prefix, o.failureAction,
				map[bool]string{true: "pause, continue or rollback", false: "pause or continue"}[o.prefix == "update"])
		}
		ch.FailureAction, set = &o.failureAction, true
	}
	if flags.Changed(o.prefix + "-monitor") {
		if o.monitor < 0 {
			return nil, fmt.Errorf("invalid --%s-monitor %s: want 0 or more", o.prefix, o.monitor)
		}
		ch.Monitor, set = &o.monitor, true
	}
	if !set {
		return nil, nil
	}
	return &ch, nil
}

// config is the flags' config for service create: Docker's defaults
// with what was given; nil when nothing was.
func (o updateConfigFlags) config(flags *pflag.FlagSet) (*api.UpdateConfig, error) {
	ch, err := o.change(flags)
	if err != nil || ch == nil {
		return nil, err
	}
	c := api.DefaultUpdateConfig()
	if ch.Parallelism != nil {
		c.Parallelism = *ch.Parallelism
	}
	if ch.Delay != nil {
		c.Delay = *ch.Delay
	}
	if ch.Order != nil {
		c.Order = *ch.Order
	}
	if ch.FailureAction != nil {
		c.FailureAction = *ch.FailureAction
	}
	if ch.Monitor != nil {
		c.Monitor = *ch.Monitor
	}
	return &c, nil
}

// envList reads -e/--env and --env-add values as docker does: KEY=VALUE,
// or KEY alone for the variable's value here (left out when unset here).
func envList(vals []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, v := range vals {
		k, _, hasValue := strings.Cut(v, "=")
		if k == "" || strings.ContainsAny(k, " \t\n") || strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("invalid environment variable %q: want KEY=VALUE", v)
		}
		if !hasValue {
			val, ok := lookup(k)
			if !ok {
				continue
			}
			v = k + "=" + val
		}
		out = append(out, v)
	}
	if err := api.CheckEnv(out); err != nil {
		return nil, err
	}
	return out, nil
}

// updateRequest turns the flags into an update request; only the flags
// given change the service.
func updateRequest(opts serviceUpdateOptions, flags *pflag.FlagSet, lookup func(string) (string, bool)) (api.ServiceUpdate, error) {
	var u api.ServiceUpdate
	if flags.Changed("image") {
		if opts.image == "" {
			return u, fmt.Errorf("invalid --image: empty")
		}
		image := normalizeImage(opts.image)
		u.Image = &image
	}
	if flags.Changed("replicas") {
		if opts.replicas < 0 {
			return u, fmt.Errorf("invalid --replicas %d: want 0 or more", opts.replicas)
		}
		u.Replicas = &opts.replicas
	}
	var err error
	if u.EnvAdd, err = envList(opts.envAdd, lookup); err != nil {
		return u, err
	}
	for _, k := range opts.envRm {
		if k == "" {
			return u, fmt.Errorf("invalid --env-rm: empty")
		}
	}
	u.EnvRm = opts.envRm
	for _, p := range opts.publishAdd {
		pc, err := parsePublish(p)
		if err != nil {
			return u, err
		}
		u.PublishAdd = append(u.PublishAdd, pc)
	}
	for _, p := range opts.publishRm {
		pc, err := parsePublish(p)
		if err != nil {
			return u, fmt.Errorf("invalid --publish-rm %q: want PUBLISHED[/PROTOCOL]", p)
		}
		u.PublishRm = append(u.PublishRm, pc)
	}
	for _, n := range opts.networkAdd {
		att, err := parseNetworkFlag(n)
		if err != nil {
			return u, err
		}
		u.NetworkAdd = append(u.NetworkAdd, att)
	}
	u.NetworkRm = opts.networkRm
	if u.Update, err = opts.update.change(flags); err != nil {
		return u, err
	}
	if u.Rollback, err = opts.rollbackC.change(flags); err != nil {
		return u, err
	}
	u.Force = opts.force
	if opts.rollback {
		// Docker's --rollback takes no other change.
		flags.Visit(func(f *pflag.Flag) {
			if f.Name != "rollback" && f.Name != flagDetach && f.Name != flagTimeout && err == nil {
				err = fmt.Errorf("--rollback cannot be combined with --%s", f.Name)
			}
		})
	}
	return u, err
}

// runServiceUpdate sends the update (or with --rollback the rollback),
// prints the service's name and, unless detached, waits for the tasks
// to be replaced and the service to converge.
func runServiceUpdate(ctx context.Context, cl serviceUpdateAPI, out io.Writer, opts serviceUpdateOptions) error {
	if opts.rollback {
		return runServiceRollback(ctx, cl, out, serviceRollbackOptions{service: opts.service, wait: opts.wait})
	}
	var ended map[string]bool
	if !opts.wait.detach {
		var err error
		if ended, err = endedTasks(ctx, cl, opts.service); err != nil {
			return err
		}
	}
	svc, err := cl.UpdateService(ctx, opts.service, opts.req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, opts.service)
	if opts.wait.detach {
		return nil
	}
	return waitUpdated(ctx, cl, out, svc.ID, opts.wait.timeout, ended, waitUpdate)
}
