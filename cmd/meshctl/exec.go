package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

func newExecCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "exec TASK -- COMMAND [ARG...]",
		Short: "Run a command inside a task (its network, hostname and mounts)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			t, err := cl.Task(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := c.checkLocal(cmd.Context(), cl, t); err != nil {
				return err
			}
			if t.Status.State != api.TaskRunning || t.Status.PID == 0 {
				return fmt.Errorf("task %s is not running (%s)", t.Name(), t.Status.State)
			}
			pid := strconv.Itoa(t.Status.PID)
			return c.passthrough(append([]string{"nsenter", "-t", pid, "-n", "-u", "-m", "--"}, args[1:]...))
		},
	}
}

// checkLocal refuses a task on another machine: its process is not here.
// Lab nodes all live on this machine, so any of them will do.
func (c *cli) checkLocal(ctx context.Context, cl *api.Client, t api.Task) error {
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	if t.NodeID == info.NodeID {
		return nil
	}
	if l, err := lab.Load(c.labRoot, c.labPrefix); err == nil {
		if _, ok := l.Node(t.NodeName); ok {
			return nil
		}
	}
	return fmt.Errorf("task %s runs on %s: run meshctl exec there", t.Name(), t.NodeName)
}

// passthrough runs argv with meshctl's stdio and exits with its status.
func (c *cli) passthrough(argv []string) error {
	x := exec.Command(argv[0], argv[1:]...)
	x.Stdin, x.Stdout, x.Stderr = os.Stdin, c.out, c.errOut
	if err := x.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	return nil
}

func newPsCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "ps", Short: "List the tasks running on this node", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			info, err := cl.Info(cmd.Context())
			if err != nil {
				return err
			}
			tasks, err := cl.Tasks(cmd.Context(), "", info.NodeID)
			if err != nil {
				return err
			}
			return printLocalTasks(c, tasks, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.format, flagFormat, "f", "", "Go template or json")
	cmd.Flags().BoolVarP(&opts.quiet, flagQuiet, "q", false, "only container IDs")
	return cmd
}

func printLocalTasks(c *cli, tasks []api.Task, opts listOptions) error {
	switch {
	case opts.quiet:
		for _, t := range tasks {
			fmt.Fprintln(c.out, t.Hostname())
		}
		return nil
	case opts.format != "":
		return printEach(c.out, opts.format, tasks)
	}
	tb := table{header: []string{"CONTAINER ID", "IMAGE", "STATUS", "NETWORKS", "NAMES"}}
	for _, t := range tasks {
		var nets []string
		for _, tn := range t.Networks {
			nets = append(nets, tn.NetworkName+"="+tn.Addr)
		}
		tb.add(t.Hostname(), imageOf(t.Image, t.Args), title(t.Status.State), joinOr(nets, "-"), t.Name()+"."+t.ID)
	}
	return tb.write(c.out)
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}

func newNsCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "ns", Short: "The network namespaces meshd made on this node", Args: cobra.NoArgs}
	ls := &cobra.Command{
		Use: "ls", Short: "List them", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			nss, err := cl.Namespaces(cmd.Context())
			if err != nil {
				return err
			}
			tb := table{header: []string{"NAME", "KIND", "OWNER", "PATH"}}
			for _, n := range nss {
				tb.add(n.Name, n.Kind, n.Owner, n.Path)
			}
			return tb.write(c.out)
		},
	}
	nsExec := &cobra.Command{
		Use: "exec NAME -- COMMAND [ARG...]", Short: "Run a command in one of them", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			nss, err := cl.Namespaces(cmd.Context())
			if err != nil {
				return err
			}
			for _, n := range nss {
				if n.Name == args[0] {
					return c.passthrough(append([]string{"nsenter", "--net=" + n.Path, "--"}, args[1:]...))
				}
			}
			return fmt.Errorf("no namespace %q on this node (see meshctl ns ls)", args[0])
		},
	}
	cmd.AddCommand(ls, nsExec)
	return cmd
}
