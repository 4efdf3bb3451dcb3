package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

const (
	flagFormat = "format"
	flagQuiet  = "quiet"
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
	return printEach(out, format, items)
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
