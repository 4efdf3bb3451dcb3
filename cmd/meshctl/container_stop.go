package main

import (
	"context"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// stopOptions are docker stop's and restart's flags.
type stopOptions struct {
	refs []string
	// timeout is -t: seconds of grace before SIGKILL; nil is meshd's
	// default.
	timeout *int
}

func newStopCommand(c *cli) *cobra.Command {
	return stopCommand(c, "stop", "Stop one or more running containers", runStop)
}

func newRestartCommand(c *cli) *cobra.Command {
	return stopCommand(c, "restart", "Restart one or more containers", runRestart)
}

// stopCommand is stop's and restart's command line: the same flag, a
// different run.
func stopCommand(c *cli, name, short string, run func(context.Context, containerAPI, io.Writer, stopOptions) error) *cobra.Command {
	var opts stopOptions
	var seconds int
	cmd := &cobra.Command{
		Use: name + " [OPTIONS] CONTAINER [CONTAINER...]", Short: short, Args: minArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.refs = args
			return run(ctx, cl, c.out, opts)
		}),
	}
	cmd.DisableFlagsInUseLine = true
	f := cmd.Flags()
	// docker's -t is --time now; --timeout, its older name, still works.
	f.IntVarP(&seconds, "time", "t", 0, "Seconds to wait before killing the container")
	f.IntVar(&seconds, flagTimeout, 0, "Seconds to wait before killing the container")
	_ = f.MarkHidden(flagTimeout)
	cmd.PreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Flags().Changed("time") || cmd.Flags().Changed(flagTimeout) {
			opts.timeout = &seconds
		}
	}
	return cmd
}

// runStop stops every container, printing each ref as docker does and
// returning the failures as one line.
func runStop(ctx context.Context, cl containerAPI, out io.Writer, opts stopOptions) error {
	stop := func(ctx context.Context, ref string) error {
		return cl.StopContainer(ctx, ref, api.ContainerStop{Timeout: opts.timeout})
	}
	return runRm(ctx, stop, out, opts.refs)
}

// runRestart stops then starts every container, as docker restart does.
func runRestart(ctx context.Context, cl containerAPI, out io.Writer, opts stopOptions) error {
	restart := func(ctx context.Context, ref string) error {
		if err := cl.StopContainer(ctx, ref, api.ContainerStop{Timeout: opts.timeout}); err != nil {
			return err
		}
		t, err := cl.StartContainer(ctx, ref)
		if err != nil {
			return err
		}
		return awaitStarted(ctx, cl, t)
	}
	return runRm(ctx, restart, out, opts.refs)
}
