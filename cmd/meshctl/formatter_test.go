package main

import (
	"bytes"
	"context"
	"github.com/meshd/meshd/mesh/api"
	"io"
	"strings"
	"testing"
	"time"
)

// TestFormatGolden runs each list with docker's --format fields: a
// plain template, a table whose \t are tabs, {{json .}}, and --no-trunc.
func TestFormatGolden(t *testing.T) {
	fake := newFakeAPI()
	clock := func() time.Time { return testNow }
	tests := []struct {
		name string
		run  func(ctx context.Context, out io.Writer) error
	}{
		{"service-ls-format", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{format: "{{.ID}} {{.Name}} {{.Mode}} {{.Replicas}} {{.Image}} {{.Ports}}"})
		}},
		{"service-ls-table", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{format: `table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}`})
		}},
		{"service-ls-funcs", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{
				format: `table {{upper .Name}}\t{{pad .Mode 1 1}}|\t{{truncate .ID 4}}\t{{title .Mode}}\t{{join (split .Ports ", ") ";"}}\t{{json .Endpoint.Ports}}`})
		}},
		{"service-ls-json-template", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{format: "{{json .}}"})
		}},
		{"service-ls-meshd-fields", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{format: "{{.Name}} {{.Running}} {{.Endpoint.Mode}} {{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}"})
		}},
		{"service-ps-format", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock,
				list: listOptions{format: "{{.ID}} {{.Name}} {{.Image}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}|{{.Ports}}"}})
		}},
		{"service-ps-table", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock,
				list: listOptions{format: `table {{.ID}}\t{{.Name}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}`}})
		}},
		{"service-ps-json-template", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{format: "{{json .}}"}})
		}},
		{"service-ps-meshd-fields", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock,
				list: listOptions{format: "{{.Task.ID}} {{.Slot}} {{.Task.DesiredState}} {{.Task.Status.State}} {{range .Networks}}{{.NetworkName}}={{.Addr}} {{end}}"}})
		}},
		{"service-ps-no-trunc", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{noTrunc: true}})
		}},
		{"network-ls-table", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{
				format: `table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}\t{{.IPv6}}\t{{.Internal}}\t{{.CreatedAt}}\t{{.Labels}}\t{{.Subnet}}\t{{.VNI}}`})
		}},
		{"network-ls-json-template", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{format: "{{json .}}"})
		}},
		{"network-ls-no-trunc", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{noTrunc: true})
		}},
		{"node-ls-table", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{
				format: `table {{.ID}} {{if .Self}}*{{else}} {{end}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}\t{{.DataPlane}}`})
		}},
		{"node-ls-json-template", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: "{{json .}}"})
		}},
		{"ps-table", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock,
				format: `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.State}}\t{{.Status}}\t{{.Names}}\t{{.Networks}}`}})
		}},
		{"ps-format", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock,
				format: "{{.ID}}|{{.CreatedAt}}|{{.Ports}}|{{.Mounts}}|{{.Labels}}|{{.Size}}|{{.Task.Status.Sandbox}}"}})
		}},
		{"ps-json-template", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock, format: "{{json .}}"}})
		}},
		{"service-ps-quiet-format", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{quiet: true, format: "{{.Name}} {{.Node}}"}})
		}},
		{"service-ps-quiet-no-trunc", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{quiet: true, noTrunc: true}})
		}},
		{"ps-no-trunc", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock, noTrunc: true, format: "{{.ID}} {{.Command}}"}})
		}},
		{"lb-ls-table", func(ctx context.Context, out io.Writer) error {
			return runLBLs(ctx, fake, out, lbLsOptions{format: `table {{.Sandbox}}\t{{.Network}}\t{{.DataPlane}}`})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.run(context.Background(), &out); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			golden(t, "format-"+tt.name, out.String())
		})
	}
}

// TestFormatFails checks that a template failing on an item prints its
// error alone: every item renders before anything is printed.
func TestFormatFails(t *testing.T) {
	fake := newFakeAPI()
	// Each fails on the last item only, after the others have rendered.
	tests := []struct {
		name string
		run  func(ctx context.Context, out io.Writer, format string) error
	}{
		{"service ls", func(ctx context.Context, out io.Writer, format string) error {
			return runServiceLs(ctx, fake, out, listOptions{format: format})
		}},
		{"service ps", func(ctx context.Context, out io.Writer, format string) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", list: listOptions{format: format}})
		}},
		{"network ls", func(ctx context.Context, out io.Writer, format string) error {
			return runNetworkLs(ctx, fake, out, listOptions{format: format})
		}},
		{"node ls", func(ctx context.Context, out io.Writer, format string) error {
			return runNodeLs(ctx, fake, out, listOptions{format: format})
		}},
		{"ps", func(ctx context.Context, out io.Writer, format string) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{format: format}})
		}},
		{"lb ls", func(ctx context.Context, out io.Writer, format string) error {
			return runLBLs(ctx, fake, out, lbLsOptions{format: format})
		}},
	}
	for _, tt := range tests {
		for _, format := range []string{"{{.Nope}}", `table {{.ID}}\t{{.Nope}}`, "{{if false}}{{end}}x{{.Nope}}"} {
			t.Run(tt.name+" "+format, func(t *testing.T) {
				var out bytes.Buffer
				err := tt.run(context.Background(), &out, format)
				if err == nil || !strings.HasPrefix(err.Error(), "template parsing error: template: ") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got error %v, want one line starting with template parsing error: template: ", err)
				}
				if out.Len() != 0 {
					t.Errorf("got output %q, want none", out.String())
				}
			})
		}
	}
	// A template that fails on the third service only prints nothing.
	var out bytes.Buffer
	err := runServiceLs(context.Background(), fake, &out, listOptions{format: `{{.Name}}{{if eq .Name "idle"}}{{.Nope}}{{end}}`})
	if err == nil || out.Len() != 0 {
		t.Errorf("got error %v and output %q, want an error and no output", err, out.String())
	}
}

func TestIsTableFormat(t *testing.T) {
	for format, want := range map[string]bool{
		"table": true, "table {{.ID}}": true, " table {{.ID}}": false, "table{{.ID}}": true, "{{.ID}} table": false, "": false, "json": false,
	} {
		if got := isTableFormat(format); got != want {
			t.Errorf("isTableFormat(%q): got %v, want %v", format, got, want)
		}
	}
}

// TestE2ETemplates runs the list templates mesh/e2e uses, so that one
// that no longer works with docker's fields fails here, not in a lab.
func TestE2ETemplates(t *testing.T) {
	fake := newFakeAPI()
	clock := func() time.Time { return testNow }
	servicePs := func(format string) func(context.Context, io.Writer) error {
		return func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{format: format}})
		}
	}
	ps := func(format string) func(context.Context, io.Writer) error {
		return func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock, format: format}})
		}
	}
	nodeLs := func(format string) func(context.Context, io.Writer) error {
		return func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: format})
		}
	}
	// bench's template needs a task with a network: www.1's current one.
	runs := []func(context.Context, io.Writer) error{func(ctx context.Context, out io.Writer) error {
		return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{
			format: "{{.NodeName}} {{(index .Networks 0).Addr}} {{.Name}}", filter: []string{"name=www.1", "desired-state=running"}}})
	}}
	for _, f := range []string{
		"{{.NodeName}}",
		"{{.Name}} {{.Node}} {{.DesiredState}} {{range .Networks}}{{.Addr}}{{end}}",
		"{{.Node}} {{.DesiredState}} {{.CurrentState}}",
		"{{.NodeName}} {{.Status.State}}",
		`{{range .Networks}}{{.NetworkName}}={{.Addr}} {{end}}`,
		`{{.Name}} {{.Node}} {{.Task.ID}} {{range .Networks}}{{.Addr}} {{.MAC}} {{end}}`,
	} {
		runs = append(runs, servicePs(f))
	}
	runs = append(runs, ps("{{.Task.Status.Sandbox}}"), ps("{{.Name}}"))
	for _, f := range []string{"{{.ManagerStatus}}", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}", "{{.DataPlane}}", "{{.Hostname}} {{.Status}}"} {
		runs = append(runs, nodeLs(f))
	}
	runs = append(runs, func(ctx context.Context, out io.Writer) error {
		return runLBLs(ctx, fake, out, lbLsOptions{format: `{{if eq .Sandbox "ingress_sbox"}}{{.Table}}{{end}}`})
	})
	for _, f := range []string{"{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}", "{{.Version.Index}} {{.Spec.TaskTemplate.ContainerSpec.Image}}",
		"{{.UpdateStatus}} {{json .Spec.TaskTemplate.ContainerSpec.Env}}"} {
		runs = append(runs, func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, asResource(fake.Service), out, inspectOptions{format: f, refs: []string{"www"}})
		})
	}
	var out bytes.Buffer
	for _, run := range runs {
		if err := run(context.Background(), &out); err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		out.WriteString("--\n")
	}
	golden(t, "format-e2e-templates", out.String())
}

// TestInspectTemplateOnJSON checks docker inspect's fallback: a template
// the typed object fails is run on its JSON, where {{.Id}} is the ID.
func TestInspectTemplateOnJSON(t *testing.T) {
	items := []api.Container{{ID: "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2", Name: "/c1"}}
	for _, tc := range []struct{ format, want, err string }{
		{"{{.Id}}", "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2\n", ""},
		{"{{.ID}} {{.Name}}", "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2 /c1\n", ""},
		{"{{.Nope}}", "", `template: template: format:1:2: executing "format" at <.Nope>: map has no entry for key "Nope"`},
		{"{{.State.Pid}}", "0\n", ""},
	} {
		var out bytes.Buffer
		err := printInspect(&out, tc.format, items)
		if out.String() != tc.want || errString(err) != tc.err {
			t.Errorf("%s: %q, %v; want %q, %q", tc.format, out.String(), err, tc.want, tc.err)
		}
	}
}
