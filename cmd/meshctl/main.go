// Command meshctl drives meshd the way docker drives Swarm.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

// cli holds what every command needs: where to talk and where to write.
type cli struct {
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
	root.AddCommand(newNodeCommand(c), newNetworkCommand(c), newServiceCommand(c), newPsCommand(c), newExecCommand(c),
		newNsCommand(c), newLBCommand(c), newSwarmCommand(c), newLabCommand(c), newVersionCommand(c))
	return root
}

func main() {
	c := &cli{out: os.Stdout, errOut: os.Stderr}
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
