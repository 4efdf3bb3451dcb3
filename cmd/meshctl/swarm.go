package main

import (
	"fmt"
	"net"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newSwarmCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "swarm", Short: "Manage the cluster", Args: cobra.NoArgs}
	cmd.AddCommand(newJoinTokenCommand(c))
	return cmd
}

func newJoinTokenCommand(c *cli) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use: "join-token [worker]", Short: "Print the command that joins a node", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "worker" {
				return fmt.Errorf("unknown role %q: meshd has one manager; nodes join as worker", args[0])
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			jt, err := cl.JoinToken(cmd.Context())
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, jt.Token)
				return nil
			}
			join := jt.ManagerAddr
			if host, port, err := net.SplitHostPort(join); err == nil && port == fmt.Sprint(api.DefaultAPIPort) {
				join = host
			}
			fmt.Fprintf(c.out, "To add a worker to this cluster, run the following command on it:\n\n"+
				"    meshd --advertise-addr <ITS-ADDRESS> --join %s --token %s\n\n", join, jt.Token)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, flagQuiet, "q", false, "only the token")
	return cmd
}

func newVersionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(c.out, "meshctl", api.Version)
			return nil
		},
	}
}
