package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// cli holds what every command needs: where to talk and where to write.
type cli struct {
	in          io.Reader
	out, errOut io.Writer
	socket      string // --socket
	node        string // --node: a lab node
	labPrefix   string // --lab-prefix
	labRoot     string // --lab-root
}

// client returns a client for the meshd chosen by --socket, --node,
// $MESHD_SOCKET or the default socket, in that order.
func (c *cli) client() (*api.Client, error) {
	switch {
	case c.socket != "":
		return api.NewClient(c.socket), nil
	case c.node != "":
		l, err := lab.Load(c.labRoot, c.labPrefix)
		if err != nil {
			return nil, fmt.Errorf("--node %s: %w", c.node, err)
		}
		if _, ok := l.Node(c.node); !ok || c.node == "client" {
			return nil, fmt.Errorf("--node %s: no such node in the lab", c.node)
		}
		return api.NewClient(l.Socket(c.node)), nil
	case os.Getenv("MESHD_SOCKET") != "":
		return api.NewClient(os.Getenv("MESHD_SOCKET")), nil
	}
	return api.NewClient(api.DefaultSocket), nil
}

// withAPI is the RunE of every command that talks to meshd: it builds the
// client [cli.client] chooses and hands it to run, which passes it on to
// the command's runX as the narrow interface that runX declares. Checks
// that need no meshd go in Args or PreRunE, which cobra runs first, so
// that they fail the same way whatever --node says.
func (c *cli) withAPI(run func(ctx context.Context, cl *api.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), cl, args)
	}
}

// machine is what the commands that run programs (exec, ns exec, lab
// exec) need of the machine meshctl runs on. *cli is the real one.
type machine interface {
	// labNode reports whether name is a node of the local lab, whose
	// processes all run on this machine.
	labNode(name string) bool
	// run runs x with meshctl's stdio. A non-zero exit becomes an
	// [exitCode], so meshctl exits with the command's status; any other
	// failure is "what: err".
	run(x *exec.Cmd, what string) error
}

var _ machine = (*cli)(nil)

func (c *cli) labNode(name string) bool {
	l, err := lab.Load(c.labRoot, c.labPrefix)
	if err != nil {
		return false
	}
	_, ok := l.Node(name)
	return ok
}

func (c *cli) run(x *exec.Cmd, what string) error {
	x.Stdin, x.Stdout, x.Stderr = c.in, c.out, c.errOut
	if err := x.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
