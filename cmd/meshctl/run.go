package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runOptions are docker run's flags that mean something for a standalone
// container.
type runOptions struct {
	image       string
	argv        []string // COMMAND [ARG...]: the image's, as given
	detach      bool     // -d: print the ID and leave it running
	interactive bool     // -i: give the command meshctl's stdin
	tty         bool     // -t: run the command on a pseudo-terminal
	rm          bool     // --rm: remove the container once it ends
	name        string
	networks    []string // --network/--net, in connection order
	aliases     []string // --network-alias/--net-alias: on the first network
	ip          string   // --ip: on the first network
	publish     []string // -p, as given
	publishAll  bool     // -P
	env         []string // -e KEY=VALUE, or KEY for meshctl's own value
	workdir     string
	hostname    string
	entrypoint  string
	// req is what the flags and arguments ask meshd for, built before
	// meshd is reached (see runRequest).
	req api.ContainerCreate
}

func newRunCommand(c *cli) *cobra.Command {
	return runCommand(c, func(ctx context.Context, cl *api.Client, opts runOptions) error {
		return runRun(ctx, cl, c, c.out, opts)
	})
}

// runCommand is run's command line; run gets what it parsed, so a test
// can see where each word went without a meshd.
func runCommand(c *cli, run func(context.Context, *api.Client, runOptions) error) *cobra.Command {
	var opts runOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from a built-in image",
		Args:  minArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) (err error) {
			opts.image = args[0]
			if len(args) > 1 {
				opts.argv = args[1:]
			}
			if opts.req, err = runRequest(opts, os.LookupEnv); err != nil {
				return err
			}
			if opts.detach {
				return nil
			}
			return checkTTY(c, opts.interactive, opts.tty)
		},
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return run(ctx, cl, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true // [OPTIONS] says it
	f := cmd.Flags()
	// Everything after IMAGE is the container's: "run alpine ls -l".
	f.SetInterspersed(false)
	// --net and --net-alias are docker's older names, which it still
	// takes without showing them.
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "net":
			name = "network"
		case "net-alias":
			name = "network-alias"
		}
		return pflag.NormalizedName(name)
	})
	f.BoolVarP(&opts.detach, flagDetach, "d", false, "Run container in background and print container ID")
	f.BoolVarP(&opts.interactive, "interactive", "i", false, "Keep STDIN open")
	f.BoolVarP(&opts.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVar(&opts.rm, "rm", false, "Automatically remove the container when it exits")
	f.StringVar(&opts.name, "name", "", "Assign a name to the container")
	f.StringArrayVar(&opts.networks, "network", nil, "Connect a container to a network (repeatable, in order; default bridge)")
	f.StringArrayVar(&opts.aliases, "network-alias", nil, "Add network-scoped alias for the container (on the first --network)")
	f.StringVar(&opts.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104) on the first --network")
	f.StringArrayVarP(&opts.publish, "publish", "p", nil, "Publish a container's port to the host: [[IP:]HOST_PORT:]PORT[/PROTO]")
	f.BoolVarP(&opts.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	f.StringArrayVarP(&opts.env, "env", "e", nil, "Set environment variables (KEY=VALUE, or KEY for meshctl's own)")
	f.StringVarP(&opts.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVarP(&opts.hostname, "hostname", "h", "", "Container host name")
	// -h is --hostname, as docker run has it: help is --help only (cobra
	// would give it -h, and panic on the clash).
	f.Bool("help", false, "Print usage")
	f.StringVar(&opts.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	return cmd
}

// runRequest turns run's flags into meshd's request, refusing bad input
// with docker's words before meshd is asked. lookup gives -e KEY its
// value from meshctl's environment.
func runRequest(opts runOptions, lookup func(string) (string, bool)) (api.ContainerCreate, error) {
	req := api.ContainerCreate{Name: opts.name, Image: opts.image, Cmd: opts.argv, Entrypoint: opts.entrypoint,
		WorkingDir: opts.workdir, Hostname: opts.hostname, PublishAll: opts.publishAll, AutoRemove: opts.rm}
	if err := checkEnv(opts.env); err != nil {
		return req, err
	}
	req.Env = execEnv(opts.env, lookup)
	for _, s := range opts.publish {
		p, err := parseRunPublish(s)
		if err != nil {
			return req, err
		}
		req.Publish = append(req.Publish, p)
	}
	if err := checkIPv4(opts.ip); err != nil {
		return req, err
	}
	// The aliases and the address go with the first network, as docker
	// has them; with none, with the default bridge, where meshd refuses
	// them as docker's daemon does.
	nets := opts.networks
	if len(nets) == 0 && (len(opts.aliases) > 0 || opts.ip != "") {
		nets = []string{api.DefaultBridge}
	}
	for i, n := range nets {
		if n == "" {
			return req, fmt.Errorf("invalid argument \"\" for \"--network\" flag: network name is empty")
		}
		for _, prev := range req.Networks {
			if prev.Network == n {
				return req, fmt.Errorf("network %s is specified multiple times", api.Quote(n))
			}
		}
		a := api.ContainerAttach{Network: n}
		if i == 0 {
			a.Aliases, a.IP = opts.aliases, opts.ip
		}
		req.Networks = append(req.Networks, a)
	}
	return req, nil
}

// runRun runs the container: in the background with -d, printing its
// ID; else in the foreground (see runForeground and runFollow).
func runRun(ctx context.Context, cl containerAPI, m execMachine, out io.Writer, opts runOptions) error {
	if _, ok := foregroundCommand(opts); !opts.detach && ok {
		return runForeground(ctx, cl, m, opts)
	}
	if !opts.detach {
		return runFollow(ctx, cl, out, opts)
	}
	t, err := cl.RunContainer(ctx, opts.req)
	if err != nil {
		return err
	}
	// docker run -d returns once the container runs, so that the ps
	// that follows shows it up. A --rm container that ended at once is
	// gone: its ID is printed all the same.
	if err := awaitStarted(ctx, cl, t); err != nil {
		return err
	}
	fmt.Fprintln(out, t.ContainerID())
	return nil
}

// awaitStarted returns once the container t, just run or started, is past
// starting (see waitStarted). One that ended at once and is gone (--rm)
// is no error.
func awaitStarted(ctx context.Context, cl containerAPI, t api.Task) error {
	if pastStarting(t) {
		return nil
	}
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	if _, err := waitStarted(ctx, cl, info, t); err != nil && api.StatusCode(err) != http.StatusNotFound {
		return err
	}
	return nil
}

// foregroundCommand is the command a run without -d executes in its
// container, and whether it executes one at all: the --entrypoint with
// the arguments; the command a shell image is given, or sh (the shell
// images are a userland, their own program is a shell); a command given
// to a server image. A server image without one (run nginx), or given
// only options for its program (run whoami --port 8080), runs its own
// program, which runFollow follows.
func foregroundCommand(opts runOptions) ([]string, bool) {
	switch {
	case opts.entrypoint != "":
		return append([]string{opts.entrypoint}, opts.argv...), true
	case shellImage(opts.image) && len(opts.argv) == 0:
		return []string{"sh"}, true
	case shellImage(opts.image):
		return opts.argv, true
	case len(opts.argv) > 0 && !strings.HasPrefix(opts.argv[0], "-"):
		return opts.argv, true
	}
	return nil, false
}

// shellImage reports whether image names one of the built-in images that
// are only a userland (alpine, busybox, centos, ubuntu, debian): with a
// tag or not, with docker.io/ and library/ or not. mesh/images holds the
// images, but meshctl links only the API, so the list is repeated here
// and TestShellImages holds it to mesh/images'.
func shellImage(image string) bool {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "library/")
	switch name {
	case "alpine", "busybox", "centos", "ubuntu", "debian":
		return true
	}
	return false
}
