package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/lab"
)

func TestLabNodeCommands(t *testing.T) {
	type run = func(ctx context.Context, l labDaemons, out io.Writer, opts labNodeOptions) error
	tests := []struct {
		name  string
		run   run
		opts  labNodeOptions
		calls []string
		want  string
	}{
		{name: "stop", run: runLabStop, opts: labNodeOptions{node: "node2"},
			calls: []string{"stop node2 terminated"}, want: "node2: meshd stopped\n"},
		{name: "stop --kill", run: runLabStop, opts: labNodeOptions{node: "node1", kill: true},
			calls: []string{"stop node1 killed"}, want: "node1: meshd killed\n"},
		// No swarm init or join: the daemon comes back from its run dir.
		{name: "start", run: runLabStart, opts: labNodeOptions{node: "node3"},
			calls: []string{"start node3", "wait node3"}, want: "node3: meshd started\n"},
		{name: "restart", run: runLabRestart, opts: labNodeOptions{node: "node2"},
			calls: []string{"stop node2 terminated", "start node2", "wait node2"}, want: "node2: meshd restarted\n"},
		{name: "restart --kill", run: runLabRestart, opts: labNodeOptions{node: "node2", kill: true},
			calls: []string{"stop node2 killed", "start node2", "wait node2"}, want: "node2: meshd restarted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLab{}
			var out bytes.Buffer
			if err := tt.run(context.Background(), l, &out, tt.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.calls, l.calls); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLabUpValidate(t *testing.T) {
	tests := []struct {
		name     string
		opts     labUpOptions
		managers int // lab.Options.Managers
		wantErr  string
	}{
		{name: "default", opts: labUpOptions{nodes: 3, managers: 1}, managers: 1},
		{name: "every node a manager", opts: labUpOptions{nodes: 3, managers: 3}, managers: 3},
		{name: "even managers", opts: labUpOptions{nodes: 4, managers: 2}, managers: 2},
		{name: "no swarm", opts: labUpOptions{nodes: 2, managers: 1, noSwarm: true}, managers: 0},
		{name: "too many managers", opts: labUpOptions{nodes: 3, managers: 4}, wantErr: "--managers 4: want 1 to 3 (--nodes)"},
		{name: "no manager", opts: labUpOptions{nodes: 3, managers: 0}, wantErr: "--managers 0: want 1 to 3 (--nodes)"},
		{name: "managers and no swarm", opts: labUpOptions{nodes: 3, managers: 1, managersSet: true, noSwarm: true},
			wantErr: "--managers and --no-swarm cannot be used together: --no-swarm forms no swarm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.validate()
			if failed(t, err, tt.wantErr) {
				if err.Error() != tt.wantErr {
					t.Errorf("got error %q, want %q", err, tt.wantErr)
				}
				return
			}
			if got := tt.opts.swarmManagers(); got != tt.managers {
				t.Errorf("got %d managers, want %d", got, tt.managers)
			}
		})
	}
}

func TestLabNodeReady(t *testing.T) {
	node1, node2 := lab.Node{Name: "node1"}, lab.Node{Name: "node2"}
	tests := []struct {
		name    string
		swarm   bool
		node    lab.Node
		info    api.Info
		err     error
		wantErr string
	}{
		{name: "node1 sees all", swarm: true, node: node1, info: api.Info{LocalNodeState: "active", NodesReady: 3}},
		{name: "node1 sees two", swarm: true, node: node1, info: api.Info{LocalNodeState: "active", NodesReady: 2},
			wantErr: "node1 sees 2 of 3 nodes Ready"},
		{name: "node1 not initialised yet", swarm: true, node: node1, info: api.Info{LocalNodeState: "inactive"},
			wantErr: "node1 is not in the swarm yet (inactive)"},
		// A worker knows no node counts: only its own state is asked.
		{name: "worker joined", swarm: true, node: node2, info: api.Info{LocalNodeState: "active"}},
		{name: "worker not joined", swarm: true, node: node2, info: api.Info{LocalNodeState: "inactive"},
			wantErr: "node2 is not in the swarm yet (inactive)"},
		{name: "no swarm: answers", node: node2, info: api.Info{LocalNodeState: "inactive"}},
		{name: "no swarm: down", node: node2, err: errDown, wantErr: "cannot reach meshd"},
		{name: "swarm: down", swarm: true, node: node1, err: errDown, wantErr: "cannot reach meshd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			connect := func(n lab.Node) infoAPI {
				asked = append(asked, n.Name)
				return &fakeAPI{infoFunc: func() (api.Info, error) { return tt.info, tt.err }}
			}
			err := labNodeReady(3, tt.swarm, connect)(context.Background(), tt.node)
			failed(t, err, tt.wantErr)
			if diff := cmp.Diff([]string{tt.node.Name}, asked); diff != "" {
				t.Errorf("asked mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLabErrors checks that lab stop, start and restart fail in one line,
// before touching a daemon when the node is wrong.
func TestLabErrors(t *testing.T) {
	exited := &lab.NodeError{Node: "node2", Err: errors.New("daemon exited")}
	tests := []struct {
		name    string
		run     func(ctx context.Context, l labDaemons, out io.Writer, opts labNodeOptions) error
		node    string
		errs    map[string]error
		calls   []string
		wantErr string
	}{
		{name: "stop: no such node", run: runLabStop, node: "node9",
			wantErr: `no meshd node "node9" in the lab: want one of node1..node3`},
		{name: "stop: the client", run: runLabStop, node: "client",
			wantErr: `no meshd node "client" in the lab: want one of node1..node3`},
		{name: "start: no such node", run: runLabStart, node: "node", wantErr: `no meshd node "node"`},
		{name: "restart: no such node", run: runLabRestart, node: "node0", wantErr: `no meshd node "node0"`},
		{name: "start: running", run: runLabStart, node: "node2", errs: map[string]error{"start node2": errors.New("start node2: already running")},
			calls: []string{"start node2"}, wantErr: "start node2: already running"},
		{name: "start: exits", run: runLabStart, node: "node2", errs: map[string]error{"wait node2": exited},
			calls: []string{"start node2", "wait node2"}, wantErr: "node2: daemon exited (see /run/meshd-lab/default/node2/meshd.log)"},
		{name: "restart: stop fails", run: runLabRestart, node: "node2",
			errs:  map[string]error{"stop node2 terminated": errors.New("stop node2: pid 42 still running 10s after terminated")},
			calls: []string{"stop node2 terminated"}, wantErr: "stop node2: pid 42 still running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLab{errs: tt.errs}
			var out bytes.Buffer
			err := tt.run(context.Background(), l, &out, labNodeOptions{node: tt.node})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got error %v, want one line starting with %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.calls, l.calls); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			if out.Len() > 0 {
				t.Errorf("got output %q, want none", out.String())
			}
		})
	}
}

func TestLabUpSummary(t *testing.T) {
	nodes := (&fakeLab{}).Nodes()
	tests := []struct {
		name     string
		nodes    []lab.Node
		managers int
		prefix   string
	}{
		{"lab-up", nodes, 1, ""},
		{"lab-up-managers", nodes, 3, ""},
		{"lab-up-one-node", nodes[:1], 1, ""},
		{"lab-up-no-swarm", nodes[:2], 0, ""},
		{"lab-up-no-swarm-prefix", nodes[:2], 0, "t1-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printLabUp(&out, tt.nodes, tt.managers, tt.prefix)
			golden(t, tt.name, out.String())
		})
	}
}
