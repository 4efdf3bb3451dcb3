package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
)

// TestFilters checks which rows each list keeps for docker's filters,
// through -q: its IDs, or the sandboxes for lb ls. Values of one key are
// OR'ed, keys AND'ed.
func TestFilters(t *testing.T) {
	fake := newFakeAPI()
	type run = func(ctx context.Context, out io.Writer, filter ...string) error
	networkLs := func(ctx context.Context, out io.Writer, f ...string) error {
		return runNetworkLs(ctx, fake, out, listOptions{quiet: true, filter: f})
	}
	serviceLs := func(ctx context.Context, out io.Writer, f ...string) error {
		return runServiceLs(ctx, fake, out, listOptions{quiet: true, filter: f})
	}
	servicePs := func(ctx context.Context, out io.Writer, f ...string) error {
		return runServicePs(ctx, fake, out, servicePsOptions{service: "www", list: listOptions{quiet: true, filter: f}})
	}
	nodeLs := func(ctx context.Context, out io.Writer, f ...string) error {
		return runNodeLs(ctx, fake, out, listOptions{quiet: true, filter: f})
	}
	ps := func(ctx context.Context, out io.Writer, f ...string) error {
		return runPs(ctx, fake, out, psOptions{listOptions: listOptions{quiet: true, filter: f}})
	}
	lbLs := func(ctx context.Context, out io.Writer, f ...string) error {
		return runLBLs(ctx, fake, out, lbLsOptions{format: "{{.Sandbox}}", filter: f})
	}
	const (
		ingress, ovnet, backend = "x2nd1o7i0nqv", "kq0b2hbd7c4h", "f3t8v0c5x1m9"
		host, gwbridge, none    = "ee31504851b9", "2774905f26eb", "094cd4c2e15d"
		www, dns, idle          = "9d2k4m6p8r0t", "b5n7q9s1u3w5", "m1o3q5s7u9w1"
		www1, www1failed        = "p7b0d3zr5n6h", "d2f4h6j8l0n2"
		www1moved, www2         = "k3m5o7q9s1u3", "h4j6l8n0p2r4"
		node1, node2, node3     = "vrto8yiuht7u28ey3faajwvr8", "8bau2aslhpnjxxq1e0p5ohm3u", "w1iwcy57ihkj0s0x6k3b4ig1c"
		www1c, dns1c            = "3ad5e5ad4ad6", "7371034534a0"
	)
	tests := []struct {
		name   string
		run    run
		filter []string
		want   []string
	}{
		{"network ls: name, a substring", networkLs, []string{"name=ne"}, []string{none, ovnet}},
		{"network ls: name, a regular expression", networkLs, []string{"name=^(in|back)"}, []string{backend, ingress}},
		{"network ls: names are OR'ed", networkLs, []string{"name=ov", "name=back"}, []string{backend, ovnet}},
		{"network ls: id, a prefix", networkLs, []string{"id=kq0b"}, []string{ovnet}},
		{"network ls: id, not a substring", networkLs, []string{"id=0b2h"}, nil},
		{"network ls: driver", networkLs, []string{"driver=overlay"}, []string{backend, ingress, ovnet}},
		{"network ls: the gateway bridge's driver", networkLs, []string{"driver=bridge"}, []string{gwbridge}},
		{"network ls: another driver", networkLs, []string{"driver=macvlan"}, nil},
		{"network ls: scope", networkLs, []string{"scope=local"}, []string{host, gwbridge, none}},
		{"network ls: keys are AND'ed", networkLs, []string{"driver=overlay", "scope=swarm", "name=ingress"}, []string{ingress}},
		{"network ls: label, which no network has", networkLs, []string{"label=com.example.team"}, nil},
		{"network ls: the key's case and spaces", networkLs, []string{" Name = ingress "}, []string{ingress}},
		{"service ls: name, a prefix", serviceLs, []string{"name=ww"}, []string{www}},
		{"service ls: name, not a substring", serviceLs, []string{"name=dle"}, nil},
		{"service ls: id", serviceLs, []string{"id=b5n"}, []string{dns}},
		{"service ls: mode", serviceLs, []string{"mode=replicated", "name=i"}, []string{idle}},
		{"service ls: global mode", serviceLs, []string{"mode=global"}, nil},
		{"service ls: label", serviceLs, []string{"label=tier=web"}, nil},
		{"service ps: name, the slot and its history", servicePs, []string{"name=www.1"}, []string{www1, www1failed, www1moved}},
		{"service ps: name with the task ID", servicePs, []string{"name=www.1.d2f"}, []string{www1failed}},
		{"service ps: id", servicePs, []string{"id=h4j"}, []string{www2}},
		{"service ps: node by hostname", servicePs, []string{"node=node2"}, []string{www1moved, www2}},
		{"service ps: node by ID prefix", servicePs, []string{"node=vrto8"}, []string{www1, www1failed}},
		{"service ps: desired state", servicePs, []string{"desired-state=running"}, []string{www1, www2}},
		{"service ps: desired state, any case", servicePs, []string{"desired-state=Shutdown"}, []string{www1failed, www1moved}},
		{"service ps: desired state accepted", servicePs, []string{"desired-state=accepted"}, nil},
		{"service ps: node and desired state", servicePs, []string{"node=node1", "desired-state=running"}, []string{www1}},
		{"node ls: role", nodeLs, []string{"role=worker"}, []string{node2, node3}},
		{"node ls: role, any case", nodeLs, []string{"role=MANAGER"}, []string{node1}},
		{"node ls: name, a prefix", nodeLs, []string{"name=node"}, []string{node1, node2, node3}},
		{"node ls: name, not a substring", nodeLs, []string{"name=ode"}, nil},
		{"node ls: names are OR'ed", nodeLs, []string{"name=node1", "name=node3"}, []string{node1, node3}},
		{"node ls: id", nodeLs, []string{"id=w1i"}, []string{node3}},
		{"node ls: membership", nodeLs, []string{"membership=accepted", "role=manager"}, []string{node1}},
		{"node ls: pending membership", nodeLs, []string{"membership=pending"}, nil},
		{"node ls: label", nodeLs, []string{"label=zone"}, nil},
		{"ps: status running", ps, []string{"status=running"}, []string{www1c}},
		{"ps: status created, a task starting", ps, []string{"status=created"}, []string{dns1c}},
		// As docker's: a status filter looks at ended containers too,
		// here www.1's failed task before it.
		{"ps: status exited", ps, []string{"status=exited"}, []string{"82445fe66ffd"}},
		{"ps: name", ps, []string{"name=^dns"}, []string{dns1c}},
		{"ps: name with the task ID", ps, []string{"name=www.1.p7b0"}, []string{www1c}},
		{"ps: id", ps, []string{"id=3ad5"}, []string{www1c}},
		{"ps: network by name", ps, []string{"network=ovnet"}, []string{www1c}},
		{"ps: network by ID prefix", ps, []string{"network=x2nd"}, []string{www1c}},
		{"lb ls: network", lbLs, []string{"network=ovnet"}, []string{"lb_kq0b2hbd7c"}},
		{"lb ls: name", lbLs, []string{"name=ingress"}, []string{"ingress_sbox"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.run(context.Background(), &out, tt.filter...); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, strings.Fields(out.String()), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("filter %q: rows differ (-want +got):\n%s", tt.filter, diff)
			}
		})
	}
}

// serveFixtures serves the fixtures over a unix socket as meshd serves its
// API, for tests of meshctl as typed, flags and all; it returns the
// socket.
func serveFixtures(t *testing.T) string {
	t.Helper()
	fake := newFakeAPI()
	ctx := context.Background()
	reply := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.Error{Message: err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { v, err := fake.Info(ctx); reply(w, v, err) })
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) { v, err := fake.Nodes(ctx); reply(w, v, err) })
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) { v, err := fake.Networks(ctx); reply(w, v, err) })
	mux.HandleFunc("GET /v1/networks/{ref}", func(w http.ResponseWriter, r *http.Request) {
		v, err := fake.Network(ctx, r.PathValue("ref"))
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) { v, err := fake.Services(ctx); reply(w, v, err) })
	mux.HandleFunc("GET /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		v, err := fake.Tasks(ctx, r.URL.Query().Get("service"), r.URL.Query().Get("node"))
		reply(w, v, err)
	})
	mux.HandleFunc("GET /v1/containers", func(w http.ResponseWriter, r *http.Request) { v, err := fake.Containers(ctx); reply(w, v, err) })
	mux.HandleFunc("GET /v1/containers/{ref}", func(w http.ResponseWriter, r *http.Request) {
		v, err := fake.Container(ctx, r.PathValue("ref"))
		reply(w, v, err)
	})
	sock := filepath.Join(t.TempDir(), "meshd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// TestFilterFlags runs meshctl as the tutorials type it: -f is --filter
// on the lists, combined with -q, and still --format on inspect; --format
// keeps rendering meshd's own objects.
func TestFilterFlags(t *testing.T) {
	sock := serveFixtures(t)
	tests := []struct {
		args []string
		want string
	}{
		// The tutorials' recipes: `meshctl network ls -f name=ingress -q | cut -c 1-10`
		// and `meshctl service ps -f name=www.1 -q www`.
		{[]string{"network", "ls", "-f", "name=ingress", "-q"}, "x2nd1o7i0nqv\n"},
		{[]string{"service", "ps", "-f", "name=www.1", "-q", "www"}, "p7b0d3zr5n6h\nd2f4h6j8l0n2\nk3m5o7q9s1u3\n"},
		{[]string{"node", "ls", "--filter", "role=worker", "--filter", "name=node3", "-q"}, "w1iwcy57ihkj0s0x6k3b4ig1c\n"},
		{[]string{"service", "ls", "-f", "name=d", "--format", "{{.Name}} {{.Endpoint.Mode}}"}, "dns dnsrr\n"},
		{[]string{"service", "ps", "www", "-f", "desired-state=running", "--format", "{{.NodeName}} {{.Status.State}}"}, "node1 running\nnode2 failed\n"},
		{[]string{"ps", "-f", "status=running", "--format", "{{.Name}}"}, "www.1\n"},
		{[]string{"network", "inspect", "-f", "{{.Name}} {{.Id}} {{index .Options \"com.docker.network.driver.overlay.vxlanid_list\"}}", "ovnet"},
			"ovnet kq0b2hbd7c4h5dqwlq4x9s0r3 4097\n"},
		// The tutorial's: inspect -f '{{ .NetworkSettings.SandboxKey }}' www.1.$(service ps -f name=www.1 -q www).
		{[]string{"inspect", "-f", "{{ .NetworkSettings.SandboxKey }}", "www.1.p7b0d3zr5n6h"}, "/var/run/meshd/netns/p7b0d3zr5n6h\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := execute(t, append([]string{"--socket", sock}, tt.args...)...)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("output differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterFlagErrors checks that a bad filter typed on the command line
// fails in one line with docker's words, printing nothing.
func TestFilterFlagErrors(t *testing.T) {
	sock := serveFixtures(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"network", "ls", "-f", "ingress"}, `invalid argument "ingress" for "-f, --filter" flag: bad format of filter (expected name=value)`},
		{[]string{"network", "ls", "-f", "foo=bar", "-q"}, "invalid filter 'foo'"},
		{[]string{"service", "ps", "-f", "name=www.1", "-f", "slot=1", "www"}, "invalid filter 'slot'"},
		{[]string{"node", "ls", "-f", "role=leader"}, "Invalid role filter: 'leader'"},
		{[]string{"ns", "ls", "-f", "name=x"}, "unknown shorthand flag: 'f' in -f"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := execute(t, append([]string{"--socket", sock}, tt.args...)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("got output %q, want none", out)
			}
		})
	}
}

// TestFlagShorthands checks docker's split over the whole tree: -f is
// --filter wherever there is one, and --format's shorthand only on
// inspect and info, whose -f docker keeps as --format.
func TestFlagShorthands(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		if f := cmd.Flags().Lookup(flagFilter); f != nil && f.Shorthand != "f" {
			t.Errorf("%s: --filter has shorthand %q, want f", cmd.CommandPath(), f.Shorthand)
		}
		if f := cmd.Flags().Lookup(flagFormat); f != nil {
			want := ""
			if cmd.Name() == "inspect" || cmd.Name() == "info" {
				want = "f"
			}
			if f.Shorthand != want {
				t.Errorf("%s: --format has shorthand %q, want %q", cmd.CommandPath(), f.Shorthand, want)
			}
		}
	}
	walk(newRootCommand(&cli{}))
}
