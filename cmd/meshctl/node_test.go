package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeAPI answers with its funcs; a nil func gives the zero result.
type fakeAPI struct {
	nodesFunc  func() ([]api.Node, error)
	nodeFunc   func(ref string) (api.Node, error)
	updateFunc func(ref string, u api.NodeUpdate) (api.Node, error)
	removeFunc func(ref string, force bool) error
}

func (f *fakeAPI) Nodes(context.Context) ([]api.Node, error) {
	if f.nodesFunc == nil {
		return nil, nil
	}
	return f.nodesFunc()
}

func (f *fakeAPI) Node(_ context.Context, ref string) (api.Node, error) {
	if f.nodeFunc == nil {
		return api.Node{}, nil
	}
	return f.nodeFunc(ref)
}

func (f *fakeAPI) UpdateNode(_ context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	if f.updateFunc == nil {
		return api.Node{}, nil
	}
	return f.updateFunc(ref, u)
}

func (f *fakeAPI) RemoveNode(_ context.Context, ref string, force bool) error {
	if f.removeFunc == nil {
		return nil
	}
	return f.removeFunc(ref, force)
}

var threeNodes = []api.Node{
	{ID: "vrto8yiuht7u28ey3faajwvr8", Hostname: "node1", Role: "manager", Status: "Ready", Availability: "Active", ManagerStatus: "Leader", Addr: "192.168.33.10", DataPlane: "iptables", Self: true},
	{ID: "8bau2aslhpnjxxq1e0p5ohm3u", Hostname: "node2", Role: "worker", Status: "Down", Availability: "Active", Addr: "192.168.33.11", DataPlane: "iptables"},
	{ID: "w1iwcy57ihkj0s0x6k3b4ig1c", Hostname: "node3", Role: "worker", Status: "Ready", Availability: "Drain", Addr: "192.168.33.12", DataPlane: "ipvs"},
}

func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestNodeLs(t *testing.T) {
	fake := &fakeAPI{nodesFunc: func() ([]api.Node, error) { return threeNodes, nil }}
	tests := []struct {
		name string
		opts listOptions
	}{
		{name: "node-ls", opts: listOptions{}},
		{name: "node-ls-quiet", opts: listOptions{quiet: true}},
		{name: "node-ls-format", opts: listOptions{format: "{{.Hostname}}: {{.Status}} {{.DataPlane}}"}},
		{name: "node-ls-json", opts: listOptions{format: "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := runNodeLs(context.Background(), fake, &out, tt.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, out.String())
		})
	}
}

func TestNodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		fake    *fakeAPI
		run     func(cl *fakeAPI) error
		wantErr string
	}{
		{name: "ls api error", fake: &fakeAPI{nodesFunc: func() ([]api.Node, error) { return nil, errors.New("cannot reach meshd") }},
			run: func(cl *fakeAPI) error { return runNodeLs(context.Background(), cl, &bytes.Buffer{}, listOptions{}) }, wantErr: "cannot reach meshd"},
		{name: "ls bad template", fake: &fakeAPI{},
			run: func(cl *fakeAPI) error {
				return runNodeLs(context.Background(), cl, &bytes.Buffer{}, listOptions{format: "{{.Nope"})
			}, wantErr: "invalid --format template"},
		{name: "inspect missing", fake: &fakeAPI{nodeFunc: func(ref string) (api.Node, error) { return api.Node{}, errors.New("node " + ref + " not found") }},
			run: func(cl *fakeAPI) error {
				return runInspect(context.Background(), cl.Node, &bytes.Buffer{}, inspectOptions{refs: []string{"node9"}})
			}, wantErr: "node node9 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(tt.fake)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNodeInspectSelfFormat(t *testing.T) {
	fake := &fakeAPI{nodeFunc: func(ref string) (api.Node, error) {
		if ref != "self" {
			t.Errorf("ref %q, want self", ref)
		}
		return threeNodes[0], nil
	}}
	var out bytes.Buffer
	if err := runInspect(context.Background(), fake.Node, &out, inspectOptions{format: "{{.ID}} {{.Addr}}", refs: []string{"self"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "vrto8yiuht7u28ey3faajwvr8 192.168.33.10\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
