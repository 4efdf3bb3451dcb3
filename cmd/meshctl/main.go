package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

func newRootCommand(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:           "meshctl",
		Short:         "Drive meshd, Docker Swarm's networking rebuilt",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&c.socket, "socket", "", "meshd socket (default $MESHD_SOCKET or "+api.DefaultSocket+")")
	pf.StringVar(&c.node, "node", "", "talk to this node of the local lab (node1, node2, …)")
	pf.StringVar(&c.labPrefix, "lab-prefix", os.Getenv("MESHD_LAB_PREFIX"), "prefix of the lab's namespaces, for several labs at once")
	pf.StringVar(&c.labRoot, "lab-root", lab.DefaultRoot, "where labs keep their state")
	_ = pf.MarkHidden("lab-root")
	root.AddCommand(newNodeCommand(c), newNetworkCommand(c), newServiceCommand(c), newPsCommand(c), newImagesCommand(c), newInspectAnyCommand(c), newLogsCommand(c), newExecCommand(c),
		newRunCommand(c), newStopCommand(c), newStartCommand(c), newRestartCommand(c), newContainerRmCommand(c), newPortCommand(c),
		newNsCommand(c), newLBCommand(c), newTraceCommand(c), newGraphCommand(c), newCaptureCommand(c), newEventsCommand(c), newCheckCommand(c), newDebugCommand(c), newSwarmCommand(c), newInfoCommand(c), newLabCommand(c), newVersionCommand(c))
	for _, extra := range extraCommands {
		root.AddCommand(extra(c))
	}
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	strictGroups(root)
	return root
}

// extraCommands are hidden commands that only some builds carry (the
// package's documentation generator, built with -tags gendocs).
var extraCommands []func(*cli) *cobra.Command

// strictGroups makes every command that only groups others (meshctl
// itself, node, swarm, lab, …) print its help when run bare and fail on
// an unknown subcommand, as docker does. Left alone, cobra prints the
// group's help and exits 0 for "meshctl swarm frobnicate": it checks Args
// only of commands that run something. Doing it here, over the whole
// tree, covers groups added later too.
func strictGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictGroups(sub)
	}
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = unknownCommand
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		// Runnable now, it would be shown as "meshctl swarm [flags]" in its usage.
		cmd.DisableFlagsInUseLine = true
	}
}

// unknownCommand refuses an unknown subcommand of a group in two lines:
// for meshctl itself docker's own ("docker: 'x' is not a docker
// command." and "See 'docker --help'"), for a group cobra's first line,
// which says which group, then docker's hint.
func unknownCommand(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case !cmd.HasParent():
		return fmt.Errorf("'%s' is not a %s command.\nSee '%s --help'", args[0], cmd.Name(), cmd.Name())
	}
	return fmt.Errorf("unknown command %q for %q\nRun '%s --help' for more information", args[0], cmd.CommandPath(), cmd.CommandPath())
}

func main() {
	c := &cli{in: os.Stdin, out: os.Stdout, errOut: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	root := newRootCommand(c)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		if code, ok := err.(exitCode); ok {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "meshctl:", err)
		os.Exit(1)
	}
}

// exitCode ends meshctl with a status and no message (lab exec passes the
// command's own status through).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
