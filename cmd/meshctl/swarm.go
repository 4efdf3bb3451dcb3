package main

import (
	"context"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// swarmAPI is what the swarm commands need from meshd.
type swarmAPI interface {
	SwarmInit(ctx context.Context, req api.SwarmInit) (api.SwarmInitResponse, error)
	SwarmJoin(ctx context.Context, req api.SwarmJoin) (api.SwarmJoinResponse, error)
	SwarmLeave(ctx context.Context, req api.SwarmLeave) error
	JoinToken(ctx context.Context, role string, rotate bool) (api.JoinToken, error)
	CA(ctx context.Context, rotate bool) (api.SwarmCA, error)
}

var _ swarmAPI = (*api.Client)(nil)

func newSwarmCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "swarm", Short: "Manage the swarm"}
	cmd.AddCommand(newSwarmInitCommand(c), newSwarmJoinCommand(c), newJoinTokenCommand(c), newSwarmLeaveCommand(c), newSwarmCACommand(c))
	return cmd
}

// printJoinCommand prints the command that joins a node with token as
// role, in docker's words with meshctl's name: swarm init prints it for
// workers, swarm join-token for the role asked.
func printJoinCommand(out io.Writer, role, token, managerAddr string) {
	fmt.Fprintf(out, "To add a %s to this swarm, run the following command:\n\n    meshctl swarm join --token %s %s\n\n", role, token, managerAddr)
}
