package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

type nodeUpdateOptions struct {
	ref          string
	availability string   // --availability: active, pause or drain
	labelAdd     []string // --label-add KEY=VALUE (or KEY: an empty value, as docker's)
	labelRm      []string // --label-rm KEY
}

func newNodeUpdateCommand(c *cli) *cobra.Command {
	var opts nodeUpdateOptions
	cmd := &cobra.Command{
		Use: "update [--availability active|pause|drain] [--label-add KEY=VALUE] [--label-rm KEY] NODE", Short: "Change a node's availability or labels",
		Args:    cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error { return opts.validate() },
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.ref = args[0]
			return runNodeUpdate(ctx, cl, c.out, opts)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&opts.availability, "availability", "", "active, pause or drain")
	f.StringArrayVar(&opts.labelAdd, "label-add", nil, "add or update a node label: KEY=VALUE (repeatable)")
	f.StringArrayVar(&opts.labelRm, "label-rm", nil, "remove a node label: KEY (repeatable)")
	return cmd
}

// validate fails when there is nothing to update; meshd checks the values.
func (o nodeUpdateOptions) validate() error {
	if o.availability == "" && len(o.labelAdd) == 0 && len(o.labelRm) == 0 {
		return errors.New("nothing to update: give --availability active, pause or drain, --label-add or --label-rm")
	}
	_, err := o.update()
	return err
}

// update is the request the flags ask for. A label without "=" gets an
// empty value, as docker's --label-add does.
func (o nodeUpdateOptions) update() (api.NodeUpdate, error) {
	u := api.NodeUpdate{Availability: o.availability, LabelRm: o.labelRm}
	for _, l := range o.labelAdd {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return u, fmt.Errorf("invalid --label-add %q: want KEY=VALUE", l)
		}
		if u.LabelAdd == nil {
			u.LabelAdd = map[string]string{}
		}
		u.LabelAdd[k] = v
	}
	for _, k := range o.labelRm {
		if k == "" {
			return u, errors.New("invalid --label-rm \"\": want KEY")
		}
	}
	return u, nil
}

// runNodeUpdate changes the node and prints its hostname.
func runNodeUpdate(ctx context.Context, cl nodeAPI, out io.Writer, opts nodeUpdateOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	u, err := opts.update()
	if err != nil {
		return err
	}
	n, err := cl.UpdateNode(ctx, opts.ref, u)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, n.Hostname)
	return nil
}
