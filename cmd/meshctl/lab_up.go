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
	lab         labOptions
	nodes       int
	managers    int
	managersSet bool // --managers given, which --no-swarm refuses
	noSwarm     bool
	meshd       string
	lbMode      string
	flags       []string
	timeout     time.Duration
}

func newLabUpCommand(c *cli) *cobra.Command {
	var opts labUpOptions
	cmd := &cobra.Command{
		Use: "up", Short: "Start a lab: node1..N at 192.168.33.10.., a client at .1, and their swarm", Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.managersSet = cmd.Flags().Changed("managers")
			return opts.validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.lab = c.labOptions()
			return runLabUp(cmd.Context(), c.out, opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.nodes, "nodes", 3, "number of nodes")
	f.IntVar(&opts.managers, "managers", 1, "number of managers, node1 first (1 to --nodes); the other nodes join as workers")
	f.BoolVar(&opts.noSwarm, "no-swarm", false, "start every meshd outside any swarm, to form it with swarm init and swarm join")
	f.StringVar(&opts.meshd, "meshd", "", "meshd binary (default: next to meshctl, else on the PATH)")
	f.StringVar(&opts.lbMode, "lb-mode", "auto", "data plane each meshd runs: auto, ipvs or iptables")
	f.StringArrayVar(&opts.flags, "meshd-flag", nil, "extra flag for every meshd, e.g. --meshd-flag=--drain-delay=5s (repeatable)")
	f.DurationVar(&opts.timeout, flagTimeout, 60*time.Second, "how long to wait for every node to be Ready")
	return cmd
}

// validate checks the flags before anything is built.
func (o labUpOptions) validate() error {
	switch {
	case o.noSwarm && o.managersSet:
		return errors.New("--managers and --no-swarm cannot be used together: --no-swarm forms no swarm")
	case !o.noSwarm && (o.managers < 1 || o.managers > o.nodes):
		return fmt.Errorf("--managers %d: want 1 to %d (--nodes)", o.managers, o.nodes)
	}
	return nil
}

// swarmManagers is lab.Options.Managers: 0 for no swarm.
func (o labUpOptions) swarmManagers() int {
	if o.noSwarm {
		return 0
	}
	return o.managers
}

// runLabUp starts the lab, forms its swarm unless told not to, printing
// each swarm command as it goes, and waits until every node is ready; a
// lab already up the same way is nothing to do.
func runLabUp(ctx context.Context, out io.Writer, opts labUpOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	meshd, err := findMeshd(opts.meshd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	managers := opts.swarmManagers()
	l, err := lab.Up(ctx, lab.Options{
		Prefix: opts.lab.prefix, Root: opts.lab.root, Nodes: opts.nodes, Managers: managers, MeshdPath: meshd,
		// The lab's "outside world" DNS is the client namespace: no real
		// resolver is ever asked from inside a lab.
		ExtraArgs: append([]string{"--lb-mode", opts.lbMode, "--dns-upstream", "192.168.33.1"}, opts.flags...),
		Progress:  out,
		WaitReady: lab.WaitNodes(200*time.Millisecond, labNodeReady(opts.nodes, managers > 0, socketInfo)),
	})
	if errors.Is(err, lab.ErrAlreadyUp) {
		fmt.Fprintf(out, "%v: nothing to do\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	printLabUp(out, l.Nodes(), l.Managers(), l.Prefix())
	return nil
}

// printLabUp says what is up and, without a swarm, how to start one.
func printLabUp(out io.Writer, nodes []lab.Node, managers int, prefix string) {
	if managers > 0 {
		fmt.Fprintf(out, "lab up: %s Ready (%s), %s, client at 192.168.33.1\n",
			plural(len(nodes), "node"), nodeNames(nodes), plural(managers, "manager"))
		return
	}
	ctl := "meshctl"
	if prefix != "" {
		ctl += " --lab-prefix " + prefix
	}
	fmt.Fprintf(out, "lab up: %s (%s) outside any swarm, client at 192.168.33.1; start one with:\n\n"+
		"    %s --node %s swarm init --advertise-addr %s\n\n", plural(len(nodes), "node"), nodeNames(nodes), ctl, nodes[0].Name, nodes[0].Addr)
}

// labNodeReady is lab up's check of a node. With a swarm, node1, the
// first manager, must see all n nodes Ready and every other node must say
// it is in the swarm: a worker can no longer read the cluster's state, so
// it is not asked for it. Without one, every meshd must answer.
func labNodeReady(n int, swarm bool, connect func(lab.Node) infoAPI) func(ctx context.Context, node lab.Node) error {
	return func(ctx context.Context, node lab.Node) error {
		info, err := connect(node).Info(ctx)
		switch {
		case err != nil:
			return err
		case !swarm:
			return nil
		case info.LocalNodeState != localNodeActive:
			return fmt.Errorf("%s is not in the swarm yet (%s)", node.Name, info.LocalNodeState)
		case node.Name == "node1" && info.NodesReady != n:
			return fmt.Errorf("%s sees %d of %d nodes Ready", node.Name, info.NodesReady, n)
		}
		return nil
	}
}

// socketInfo is the meshd of a lab node, through its socket.
func socketInfo(n lab.Node) infoAPI { return api.NewClient(filepath.Join(n.RunDir, "meshd.sock")) }

func nodeNames(nodes []lab.Node) string {
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
