package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// formatJSON as a --format value prints the objects as JSON.
const formatJSON = "json"

// table is an ls output: a header and rows, aligned as docker aligns them.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cols ...string) { t.rows = append(t.rows, cols) }

func (t *table) write(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printList prints items as an ls does: with --quiet the id of each, with
// --format each through it, else a table with header and a row per item.
func printList[T any](out io.Writer, opts listOptions, items []T, id func(T) string, header []string, row func(T) []string) error {
	switch {
	case opts.quiet:
		for _, it := range items {
			fmt.Fprintln(out, id(it))
		}
		return nil
	case opts.format != "":
		return printEach(out, opts.format, items)
	}
	t := table{header: header}
	for _, it := range items {
		t.add(row(it)...)
	}
	return t.write(out)
}

// printEach renders items with a --format value: "json" prints one JSON
// object per line (docker's ls shape), anything else is a Go template
// applied to each item.
func printEach[T any](out io.Writer, format string, items []T) error {
	if format == formatJSON {
		for _, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return fmt.Errorf("encode json: %w", err)
			}
			fmt.Fprintln(out, string(b))
		}
		return nil
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := tmpl.Execute(out, it); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out)
	}
	return nil
}

func parseTemplate(format string) (*template.Template, error) {
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"join":  strings.Join,
	}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("invalid --format template: %w", err)
	}
	return tmpl, nil
}

// shortID is the 12-character ID docker prints in lists.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// plural is "1 node", "3 nodes".
func plural(n int, noun string) string {
	if n != 1 {
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}
