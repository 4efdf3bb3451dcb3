package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
	"github.com/spf13/cobra"
)

type labUpOptions struct {
	lab     labOptions
	nodes   int
	meshd   string
	lbMode  string
	flags   []string
	timeout time.Duration
}

func newLabUpCommand(c *cli) *cobra.Command {
	var opts labUpOptions
	cmd := &cobra.Command{
		Use: "up", Short: "Start a lab: node1..N at 192.168.33.10.., a client at .1", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.lab = c.labOptions()
			return runLabUp(cmd.Context(), c.out, opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.nodes, "nodes", 3, "number of nodes")
	f.StringVar(&opts.meshd, "meshd", "", "meshd binary (default: next to meshctl, else on the PATH)")
	f.StringVar(&opts.lbMode, "lb-mode", "auto", "data plane each meshd runs: auto, ipvs or iptables")
	f.StringArrayVar(&opts.flags, "meshd-flag", nil, "extra flag for every meshd, e.g. --meshd-flag=--drain-delay=5s (repeatable)")
	f.DurationVar(&opts.timeout, flagTimeout, 60*time.Second, "how long to wait for every node to be Ready")
	return cmd
}

// runLabUp starts the lab and waits until every node sees every other
// Ready; a lab already up is nothing to do.
func runLabUp(ctx context.Context, out io.Writer, opts labUpOptions) error {
	meshd, err := findMeshd(opts.meshd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{
		Prefix: opts.lab.prefix, Root: opts.lab.root, Nodes: opts.nodes, MeshdPath: meshd,
		// The lab's "outside world" DNS is the client namespace: no real
		// resolver is ever asked from inside a lab.
		ExtraArgs: append([]string{"--lb-mode", opts.lbMode, "--dns-upstream", "192.168.33.1"}, opts.flags...),
		WaitReady: lab.WaitNodes(200*time.Millisecond, nodeSeesAll(opts.nodes)),
	})
	if errors.Is(err, lab.ErrAlreadyUp) {
		fmt.Fprintf(out, "%v: nothing to do\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lab up: %d nodes Ready (%s), client at 192.168.33.1\n", l.Size(), nodeNames(l))
	return nil
}

// nodeSeesAll is ready when a node's meshd answers and sees n nodes Ready.
func nodeSeesAll(n int) func(ctx context.Context, node lab.Node) error {
	return func(ctx context.Context, node lab.Node) error {
		info, err := api.NewClient(filepath.Join(node.RunDir, "meshd.sock")).Info(ctx)
		if err != nil {
			return err
		}
		if info.NodesReady != n {
			return fmt.Errorf("%s sees %d of %d nodes Ready", node.Name, info.NodesReady, n)
		}
		return nil
	}
}

func nodeNames(l *lab.Lab) string {
	nodes := l.Nodes()
	if len(nodes) == 1 {
		return nodes[0].Name
	}
	return nodes[0].Name + ".." + nodes[len(nodes)-1].Name
}

// findMeshd picks the meshd binary the lab starts.
func findMeshd(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "meshd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("meshd")
	if err != nil {
		return "", fmt.Errorf("meshd not found next to meshctl nor on the PATH; give --meshd")
	}
	return filepath.Abs(p)
}
