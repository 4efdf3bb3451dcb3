package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// node, network and service inspect differ only in the object, so they
// are one command here, as in docker/cli's inspect package.

// inspectOptions are the flags and arguments of the inspect commands.
type inspectOptions struct {
	format string   // --format: a Go template or json; empty is indented JSON
	refs   []string // IDs, ID prefixes or names
}

// newInspectCommand returns "<group> inspect REF [REF...]" for objects
// that get, a method of [api.Client] such as (*api.Client).Node, fetches.
func newInspectCommand[T any](c *cli, use, short string, get func(*api.Client, context.Context, string) (T, error)) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.MinimumNArgs(1),
		RunE: c.withAPI(func(ctx context.Context, cl *api.Client, args []string) error {
			opts.refs = args
			return runInspect(ctx, func(ctx context.Context, ref string) (T, error) { return get(cl, ctx, ref) }, c.out, opts)
		}),
	}
	addFormatFlag(cmd, &opts.format)
	return cmd
}

// runInspect fetches every ref with get, in order, and prints them as
// docker inspect does; the first failure ends it before anything is
// printed. get is the narrowest API there is: one method.
func runInspect[T any](ctx context.Context, get func(context.Context, string) (T, error), out io.Writer, opts inspectOptions) error {
	var items []T
	for _, ref := range opts.refs {
		it, err := get(ctx, ref)
		if err != nil {
			return err
		}
		items = append(items, it)
	}
	return printInspect(out, opts.format, items)
}

// printInspect renders inspect output: an indented JSON array by default,
// as docker inspect does, or a template per object.
func printInspect[T any](out io.Writer, format string, items []T) error {
	if format == "" || format == formatJSON {
		b, err := json.MarshalIndent(items, "", "    ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	}
	if format == formatJSON {
		return printEach(out, format, items)
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	// As docker inspect: a template the typed object fails is tried on
	// its JSON, where the fields have their JSON names ({{.Id}} beside
	// the struct's ID) and a missing key is an error.
	onRaw, err := tmpl.Clone()
	if err != nil {
		return err
	}
	onRaw.Option("missingkey=error")
	for _, it := range items {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, it); err != nil {
			b.Reset()
			raw, err := rawJSON(it)
			if err != nil {
				return err
			}
			if err := onRaw.Execute(&b, raw); err != nil {
				return fmt.Errorf("template: %w", err)
			}
		}
		b.WriteByte('\n')
		if _, err := out.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// rawJSON is v's JSON decoded into an any, numbers kept as written.
func rawJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	return raw, nil
}
