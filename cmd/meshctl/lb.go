package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLBCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "The load balancers of this node", Args: cobra.NoArgs}
	var format string
	ls := &cobra.Command{
		Use: "ls", Short: "Each sandbox's table, as ipvsadm -Ln prints it, whichever data plane runs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			tables, err := cl.LBTables(cmd.Context())
			if err != nil {
				return err
			}
			if format != "" {
				return printEach(c.out, format, tables)
			}
			for i, t := range tables {
				if i > 0 {
					fmt.Fprintln(c.out)
				}
				fmt.Fprintf(c.out, "# %s (network %s, data plane %s)\n", t.Sandbox, t.Network, t.DataPlane)
				if t.Error != "" {
					fmt.Fprintf(c.out, "error: %s\n", t.Error)
				}
				fmt.Fprint(c.out, t.Table)
			}
			return nil
		},
	}
	ls.Flags().StringVarP(&format, flagFormat, "f", "", "Go template or json")
	cmd.AddCommand(ls)
	return cmd
}
