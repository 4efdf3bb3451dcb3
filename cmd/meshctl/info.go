package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// infoAPI is what info needs from meshd.
type infoAPI interface {
	Info(ctx context.Context) (api.Info, error)
}

var _ infoAPI = (*api.Client)(nil)

// localNodeActive is Info.LocalNodeState once the node is in a swarm.
const localNodeActive = "active"

type infoOptions struct {
	format string // --format: a Go template or json; empty prints the list
}

func newInfoCommand(c *cli) *cobra.Command {
	var opts infoOptions
	cmd := &cobra.Command{
		Use: "info", Short: "Show this node and its swarm, as docker info does", Args: cobra.NoArgs,
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
			return runInfo(ctx, cl, c.out, c.errOut, opts)
		}),
	}
	addFormatFlag(cmd, &opts.format)
	return cmd
}

// runInfo prints the answering node and, as docker info's "Swarm:"
// section does, its swarm: the cluster-wide counts only on a manager,
// where they are known. A warning goes to errOut, as docker's do, so that
// the list stays the same to a script.
func runInfo(ctx context.Context, cl infoAPI, out, errOut io.Writer, opts infoOptions) error {
	info, err := cl.Info(ctx)
	if err != nil {
		return err
	}
	if opts.format != "" {
		return printEach(out, opts.format, []api.Info{info})
	}
	fmt.Fprintln(out, "Name:", info.NodeName)
	fmt.Fprintln(out, "Server Version:", info.Version)
	fmt.Fprintln(out, "Data Plane:", info.DataPlane)
	fmt.Fprintln(out, "Run Dir:", info.RunDir)
	state := info.LocalNodeState
	if state == "" {
		state = "inactive"
	}
	fmt.Fprintln(out, "Swarm:", state)
	if state == localNodeActive {
		fmt.Fprintln(out, " NodeID:", info.NodeID)
		fmt.Fprintln(out, " Is Manager:", info.ControlAvailable)
		fmt.Fprintln(out, " ClusterID:", info.ClusterID)
		fmt.Fprintln(out, " Managers:", len(info.Managers))
		if info.ControlAvailable {
			fmt.Fprintln(out, " Nodes:", info.Nodes)
			fmt.Fprintln(out, " Nodes Ready:", info.NodesReady)
		}
		if info.Leader != "" {
			fmt.Fprintln(out, " Leader:", info.Leader)
		}
		fmt.Fprintln(out, " Node Address:", info.NodeAddr)
		if len(info.Managers) > 0 {
			fmt.Fprintln(out, " Manager Addresses:")
			for _, m := range info.Managers {
				fmt.Fprintln(out, "  "+m)
			}
		}
	}
	if info.Warning != "" {
		fmt.Fprintln(errOut, "WARNING:", info.Warning)
	}
	return nil
}
