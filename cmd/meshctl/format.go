package main

import (
	"bytes"
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

// listView is how a list prints an item: its ID for --quiet, its row in
// the default table, and the context a --format template runs on, whose
// fields are docker's (see formatter.go).
type listView[T, C any] struct {
	id     func(T) string
	header []string
	row    func(T) []string
	// context is what a --format template gets for an item.
	context func(T) C
	// fields are the context's header names, as docker's table prints
	// them for a `table` format.
	fields map[string]string
}

// printList prints items as an ls does: with --format json each as JSON,
// with another --format each through it (a "table" format with a header),
// else with --quiet the id of each, else a table with header and a row per
// item. As in docker, a --format other than "table" wins over --quiet.
func printList[T, C any](out io.Writer, opts listOptions, items []T, v listView[T, C]) error {
	switch {
	case opts.quiet && (opts.format == "" || opts.format == tableFormat):
		for _, it := range items {
			fmt.Fprintln(out, v.id(it))
		}
		return nil
	case opts.format == formatJSON:
		return printEach(out, opts.format, items)
	case opts.format != "" && opts.format != tableFormat:
		ctxs := make([]C, len(items))
		for i, it := range items {
			ctxs[i] = v.context(it)
		}
		return printFormat(out, opts.format, ctxs, v.fields)
	}
	t := table{header: v.header}
	for _, it := range items {
		t.add(v.row(it)...)
	}
	return t.write(out)
}

// printEach renders items with a --format value as inspect and info do:
// "json" prints one JSON object per line (docker's ls shape), anything
// else is a Go template applied to each item.
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

// tableFormat starts a --format that prints a header and aligned columns;
// alone it is the default table.
const tableFormat = "table"

// isTableFormat says whether a --format is docker's "table TEMPLATE": it
// starts with "table", as docker checks it.
func isTableFormat(format string) bool {
	return strings.HasPrefix(format, tableFormat)
}

// printFormat runs a --format template on every item as docker's
// formatter does: "\t" and "\n" in it are a tab and a newline, each item
// ends a line, and a "table TEMPLATE" first prints the template run on
// fields (field name → header) and aligns the columns. Every item is
// rendered before anything is printed, so a template that fails prints
// nothing but the error, docker's "template parsing error: template: …"
// (docker words a failed execution so too).
func printFormat[C any](out io.Writer, format string, items []C, fields map[string]string) error {
	isTable := isTableFormat(format)
	text := format
	if isTable {
		text = strings.TrimPrefix(text, tableFormat)
	}
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.Trim(text, " "))
	tmpl, err := template.New("").Funcs(listFuncs).Parse(text)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	var body bytes.Buffer
	for _, it := range items {
		if err := tmpl.Execute(&body, it); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		body.WriteByte('\n')
	}
	if !isTable {
		_, err := body.WriteTo(out)
		return err
	}
	var head bytes.Buffer
	if h, err := template.New("").Funcs(headerFuncs).Option("missingkey=zero").Parse(text); err == nil {
		// As in docker, a header that fails to render is printed as far
		// as it got: the rows have rendered.
		_ = h.Execute(&head, fields)
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	head.WriteByte('\n')
	head.WriteTo(tw)
	body.WriteTo(tw)
	return tw.Flush()
}

// templateFuncs are the functions --format templates may call, docker's
// most used ones.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"join":  strings.Join,
}

// listFuncs are the functions docker's --format templates have: its json
// does not escape <, > and & (a port is "*:8888->80/tcp"); pad surrounds a
// value that is not empty with spaces; truncate keeps the first n bytes.
var listFuncs = template.FuncMap{
	"json":  func(v any) (string, error) { b, err := marshalJSON(v); return string(b), err },
	"split": strings.Split,
	"join":  strings.Join,
	"title": title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad":   pad,
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

// marshalJSON is json.Marshal without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// headerFuncs stand for listFuncs in a table's header: each prints the
// header name it is given, as docker's do (pad still pads, keeping the
// header over its column).
var headerFuncs = template.FuncMap{
	"json":     func(v any) string { return fmt.Sprint(v) },
	"split":    func(v any, _ ...any) string { return fmt.Sprint(v) },
	"join":     func(v any, _ ...any) string { return fmt.Sprint(v) },
	"title":    func(v any) string { return fmt.Sprint(v) },
	"lower":    func(v any) string { return fmt.Sprint(v) },
	"upper":    func(v any) string { return fmt.Sprint(v) },
	"truncate": func(v any, _ ...any) string { return fmt.Sprint(v) },
	"pad":      pad,
}

func pad(s string, before, after int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
}

func parseTemplate(format string) (*template.Template, error) {
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format)
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
