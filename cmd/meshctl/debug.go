package main

import (
	"context"
	"fmt"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// newDebugCommand holds the test hooks, hidden: a node offers them only
// when its meshd runs with --test-hooks.
//
//	meshctl --node node3 debug repair pause    # the agent stops reconciling
//	meshctl --node node3 debug repair resume   # and repairs what changed
func newDebugCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "debug", Short: "Test hooks of a meshd started with --test-hooks", Hidden: true}
	repair := &cobra.Command{Use: "repair", Short: "Pause or resume the agent's reconciling (its repairs)"}
	for _, v := range []struct {
		verb, done string
		paused     bool
	}{{"pause", "paused", true}, {"resume", "resumed", false}} {
		repair.AddCommand(&cobra.Command{
			Use: v.verb, Short: v.verb + " the agent's reconciling", Args: cobra.NoArgs,
			RunE: c.withAPI(func(ctx context.Context, cl *api.Client, _ []string) error {
				if err := cl.PauseRepair(ctx, v.paused); err != nil {
					return err
				}
				_, err := fmt.Fprintln(c.out, "repair "+v.done)
				return err
			}),
		})
	}
	cmd.AddCommand(repair)
	return cmd
}
