package main

import (
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

func newVersionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runVersion(c.out) },
	}
}

func runVersion(out io.Writer) error {
	_, err := fmt.Fprintln(out, "meshctl", api.Version)
	return err
}
