package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

var errDown = errors.New("cannot reach meshd at /var/run/meshd/meshd.sock: is it running? (dial unix /var/run/meshd/meshd.sock: connect: no such file or directory)")

// TestErrors checks that every failure is one line, as meshctl prints it
// after "meshctl: ", and that nothing was written before it.
func TestErrors(t *testing.T) {
	// broken is the fixtures with every call failing as when meshd is down.
	broken := &fakeAPI{
		infoFunc:          func() (api.Info, error) { return api.Info{}, errDown },
		nodesFunc:         func() ([]api.Node, error) { return nil, errDown },
		updateNodeFunc:    func(string, api.NodeUpdate) (api.Node, error) { return api.Node{}, errDown },
		networksFunc:      func() ([]api.NetworkResource, error) { return nil, errDown },
		createNetworkFunc: func(api.NetworkCreate) (api.Network, error) { return api.Network{}, errDown },
		servicesFunc:      func() ([]api.Service, error) { return nil, errDown },
		createServiceFunc: func(api.ServiceCreate) (api.Service, error) { return api.Service{}, errDown },
		scaleServiceFunc:  func(string, int) (api.Service, error) { return api.Service{}, errDown },
		tasksFunc:         func(string, string) ([]api.Task, error) { return nil, errDown },
		taskFunc:          func(string) (api.Task, error) { return api.Task{}, errDown },
		namespacesFunc:    func() ([]api.Namespace, error) { return nil, errDown },
		lbTablesFunc:      func() ([]api.LBTable, error) { return nil, errDown },
		joinTokenFunc:     func(string, bool) (api.JoinToken, error) { return api.JoinToken{}, errDown },
		swarmInitFunc:     func(api.SwarmInit) (api.SwarmInitResponse, error) { return api.SwarmInitResponse{}, errDown },
		swarmJoinFunc:     func(api.SwarmJoin) (api.SwarmJoinResponse, error) { return api.SwarmJoinResponse{}, errDown },
		swarmLeaveFunc:    func(api.SwarmLeave) error { return errDown },
	}
	// untouchable fails the test if meshd is asked anything.
	untouchable := &fakeAPI{
		networksFunc: func() ([]api.NetworkResource, error) { t.Error("Networks called"); return nil, nil },
		createNetworkFunc: func(api.NetworkCreate) (api.Network, error) {
			t.Error("CreateNetwork called")
			return api.Network{}, nil
		},
		servicesFunc:     func() ([]api.Service, error) { t.Error("Services called"); return nil, nil },
		nodesFunc:        func() ([]api.Node, error) { t.Error("Nodes called"); return nil, nil },
		infoFunc:         func() (api.Info, error) { t.Error("Info called"); return api.Info{}, nil },
		tasksFunc:        func(string, string) ([]api.Task, error) { t.Error("Tasks called"); return nil, nil },
		lbTablesFunc:     func() ([]api.LBTable, error) { t.Error("LBTables called"); return nil, nil },
		scaleServiceFunc: func(string, int) (api.Service, error) { t.Error("ScaleService called"); return api.Service{}, nil },
		updateNodeFunc:   func(string, api.NodeUpdate) (api.Node, error) { t.Error("UpdateNode called"); return api.Node{}, nil },
		joinTokenFunc: func(string, bool) (api.JoinToken, error) {
			t.Error("JoinToken called")
			return api.JoinToken{}, nil
		},
		swarmJoinFunc: func(api.SwarmJoin) (api.SwarmJoinResponse, error) {
			t.Error("SwarmJoin called")
			return api.SwarmJoinResponse{}, nil
		},
	}
	fake := newFakeAPI()
	halfTasks := newFakeAPI()
	halfTasks.tasksFunc = broken.tasksFunc
	m := &fakeMachine{}
	type run = func(ctx context.Context, out io.Writer) error
	tests := []struct {
		name    string
		run     run
		wantErr string
	}{
		{"info: meshd down", func(ctx context.Context, out io.Writer) error { return runInfo(ctx, broken, out, out, infoOptions{}) }, "cannot reach meshd"},
		{"info: bad template", func(ctx context.Context, out io.Writer) error {
			return runInfo(ctx, fake, out, out, infoOptions{format: "{{.Swarm"})
		}, "invalid --format template"},
		{"node ls: meshd down", func(ctx context.Context, out io.Writer) error { return runNodeLs(ctx, broken, out, listOptions{}) }, "cannot reach meshd"},
		{"node ls: bad template", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: "{{.Nope"})
		}, "template parsing error: template: :1: unclosed action"},
		{"node ls: unknown field", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: "{{.Nope}}"})
		}, `template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope`},
		{"node inspect: second missing", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Node, out, inspectOptions{refs: []string{"node1", "node9"}})
		}, "node node9 not found"},
		{"node update: nothing to update", func(ctx context.Context, out io.Writer) error {
			return runNodeUpdate(ctx, untouchable, out, nodeUpdateOptions{ref: "node2"})
		}, "nothing to update: give --availability active, pause or drain"},
		{"node update: meshd down", func(ctx context.Context, out io.Writer) error {
			return runNodeUpdate(ctx, broken, out, nodeUpdateOptions{ref: "node2", availability: "drain"})
		}, "cannot reach meshd"},
		{"node promote: meshd down", func(ctx context.Context, out io.Writer) error {
			return runNodePromote(ctx, &fakeAPI{nodeFunc: func(string) (api.Node, error) { return api.Node{}, errDown }}, out, []string{"node2"})
		}, "cannot reach meshd"},
		{"node demote: on a worker", func(ctx context.Context, out io.Writer) error {
			return runNodeDemote(ctx, &fakeAPI{nodeFunc: func(string) (api.Node, error) { return api.Node{}, api.ErrNotManager }}, out, []string{"node1", "node2"})
		}, api.ErrNotManager.Error() + "; " + api.ErrNotManager.Error()},
		{"node rm: all fail", func(ctx context.Context, out io.Writer) error {
			return runRm(ctx, func(_ context.Context, ref string) error { return errors.New("node " + ref + " is not down") }, out, []string{"node1", "node3"})
		}, "node node1 is not down; node node3 is not down"},
		{"network ls: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, untouchable, out, listOptions{filter: []string{"name=ovnet", "mode=replicated"}})
		}, "invalid filter 'mode'"},
		{"network ls: filter without =", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, untouchable, out, listOptions{filter: []string{"ovnet"}, quiet: true})
		}, "bad format of filter (expected name=value)"},
		{"images: unknown filter key", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{filter: []string{"before=nginx"}}, nil)
		}, "invalid filter 'before'"},
		{"images: bad reference pattern", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{filter: []string{"reference=["}}, nil)
		}, "invalid reference filter \"[\": syntax error in pattern"},
		{"network ls: meshd down", func(ctx context.Context, out io.Writer) error { return runNetworkLs(ctx, broken, out, listOptions{}) }, "cannot reach meshd"},
		{"network create: bad aux address", func(ctx context.Context, out io.Writer) error {
			return runNetworkCreate(ctx, untouchable, out, networkCreateOptions{name: "x", aux: []string{"router=10.0.9.1", "=10.0.9.2"}})
		}, `invalid --aux-address "=10.0.9.2": want name=ip`},
		{"network create: meshd down", func(ctx context.Context, out io.Writer) error {
			return runNetworkCreate(ctx, broken, out, networkCreateOptions{name: "x"})
		}, "cannot reach meshd"},
		{"network inspect: missing", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Network, out, inspectOptions{refs: []string{"nope"}})
		}, "network nope not found"},
		{"service ls: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, untouchable, out, listOptions{filter: []string{"name=www", "driver=overlay"}})
		}, "invalid filter 'driver'"},
		{"service ps: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, untouchable, out, servicePsOptions{service: "www", list: listOptions{filter: []string{"mode=global"}}})
		}, "invalid filter 'mode'"},
		{"service ps: unknown desired state", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, untouchable, out, servicePsOptions{service: "www", list: listOptions{filter: []string{"desired-state=sleeping"}}})
		}, "Invalid desired-state filter: 'sleeping'"},
		{"node ls: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, untouchable, out, listOptions{filter: []string{"status=ready"}})
		}, "invalid filter 'status'"},
		{"node ls: unknown role", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, untouchable, out, listOptions{filter: []string{"role=worker", "role=boss"}})
		}, "Invalid role filter: 'boss'"},
		{"node ls: unknown membership", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, untouchable, out, listOptions{filter: []string{"membership=maybe"}})
		}, "Invalid membership filter: 'maybe'"},
		{"node ls: filter without =", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, untouchable, out, listOptions{filter: []string{"role"}})
		}, "bad format of filter (expected name=value)"},
		{"ps: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, untouchable, out, psOptions{listOptions: listOptions{filter: []string{"desired-state=running"}}})
		}, "invalid filter 'desired-state'"},
		{"ps: unknown status", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, untouchable, out, psOptions{listOptions: listOptions{filter: []string{"status=up"}}})
		}, "invalid filter 'status=up'"},
		{"lb ls: unknown filter key", func(ctx context.Context, out io.Writer) error {
			return runLBLs(ctx, untouchable, out, lbLsOptions{filter: []string{"scope=swarm"}})
		}, "invalid filter 'scope'"},
		{"service ls: meshd down", func(ctx context.Context, out io.Writer) error { return runServiceLs(ctx, broken, out, listOptions{}) }, "cannot reach meshd"},
		{"service ps: meshd down", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, broken, out, servicePsOptions{service: "www"})
		}, "cannot reach meshd"},
		{"service ps: bad template", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", list: listOptions{format: "{{"}})
		}, "template parsing error"},
		{"service inspect: bad template", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Service, out, inspectOptions{format: "{{.Name", refs: []string{"www"}})
		}, "invalid --format template"},
		{"service create: meshd down", func(ctx context.Context, out io.Writer) error {
			return runServiceCreate(ctx, broken, out, serviceCreateOptions{req: api.ServiceCreate{Name: "www", Image: "whoami"}})
		}, "cannot reach meshd"},
		{"service scale: not a number", func(ctx context.Context, out io.Writer) error {
			return runServiceScale(ctx, untouchable, out, serviceScaleOptions{scales: []string{"www=2", "dns=two"}})
		}, `invalid scale "dns=two": want SERVICE=REPLICAS with REPLICAS ≥ 0`},
		{"service scale: no service", func(ctx context.Context, out io.Writer) error {
			return runServiceScale(ctx, untouchable, out, serviceScaleOptions{scales: []string{"=2"}})
		}, `invalid scale "=2"`},
		{"service scale: negative", func(ctx context.Context, out io.Writer) error {
			return runServiceScale(ctx, untouchable, out, serviceScaleOptions{scales: []string{"www=-1"}})
		}, `invalid scale "www=-1"`},
		{"service scale: no =", func(ctx context.Context, out io.Writer) error {
			return runServiceScale(ctx, untouchable, out, serviceScaleOptions{scales: []string{"www"}})
		}, `invalid scale "www"`},
		{"service scale: meshd down", func(ctx context.Context, out io.Writer) error {
			return runServiceScale(ctx, broken, out, serviceScaleOptions{scales: []string{"www=2"}})
		}, "cannot reach meshd"},
		{"ps: meshd down", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, broken, out, psOptions{listOptions: listOptions{}})
		}, "cannot reach meshd"},
		{"ps: tasks fail", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, halfTasks, out, psOptions{listOptions: listOptions{}})
		}, "cannot reach meshd"},
		{"lb ls: meshd down", func(ctx context.Context, out io.Writer) error { return runLBLs(ctx, broken, out, lbLsOptions{}) }, "cannot reach meshd"},
		{"lb ls: bad template", func(ctx context.Context, out io.Writer) error {
			return runLBLs(ctx, fake, out, lbLsOptions{format: "{{.Sandbox"})
		}, "template parsing error"},
		{"ns ls: meshd down", func(ctx context.Context, out io.Writer) error { return runNsLs(ctx, broken, out) }, "cannot reach meshd"},
		{"ns exec: no such namespace", func(ctx context.Context, _ io.Writer) error {
			return runNsExec(ctx, fake, m, nsExecOptions{name: "lb_nope", argv: []string{"ip", "a"}})
		}, `no namespace "lb_nope" on this node (see meshctl ns ls)`},
		{"exec: no such task", func(ctx context.Context, _ io.Writer) error {
			return runExec(ctx, fake, m, execOptions{task: "www.9", argv: []string{"sh"}})
		}, "No such container: www.9"},
		{"exec: task on another machine", func(ctx context.Context, _ io.Writer) error {
			return runExec(ctx, fake, m, execOptions{task: "www.2", argv: []string{"sh"}})
		}, "task www.2 runs on node2: run meshctl exec there"},
		{"exec: task not running", func(ctx context.Context, _ io.Writer) error {
			return runExec(ctx, fake, m, execOptions{task: "dns.1", argv: []string{"sh"}})
		}, "task dns.1 is not running (starting)"},
		{"exec: meshd down", func(ctx context.Context, _ io.Writer) error {
			return runExec(ctx, broken, m, execOptions{task: "www.1", argv: []string{"sh"}})
		}, "cannot reach meshd"},
		{"join-token: meshd down", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, broken, out, joinTokenOptions{role: "worker"})
		}, "cannot reach meshd"},
		{"join-token: unknown role", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, untouchable, out, joinTokenOptions{role: "leader", quiet: true})
		}, `unknown role "leader": want worker or manager`},
		{"join-token: refused on a worker", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, &fakeAPI{joinTokenFunc: func(string, bool) (api.JoinToken, error) { return api.JoinToken{}, api.ErrNotManager }},
				out, joinTokenOptions{role: "manager", rotate: true})
		}, "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."},
		{"swarm init: meshd down", func(ctx context.Context, out io.Writer) error {
			return runSwarmInit(ctx, broken, out, swarmInitOptions{})
		}, "cannot reach meshd"},
		{"swarm init: already in a swarm", func(ctx context.Context, out io.Writer) error {
			return runSwarmInit(ctx, &fakeAPI{swarmInitFunc: func(api.SwarmInit) (api.SwarmInitResponse, error) {
				return api.SwarmInitResponse{}, api.ErrAlreadyInSwarm
			}}, out, swarmInitOptions{})
		}, "This node is already part of a swarm."},
		{"swarm join: meshd down", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, broken, out, swarmJoinOptions{token: workerToken, remote: "192.168.33.10"})
		}, "cannot reach meshd"},
		{"swarm join: no token", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, untouchable, out, swarmJoinOptions{remote: "192.168.33.10"})
		}, "swarm join needs --token: run 'meshctl swarm join-token worker' (or manager) on a manager"},
		{"swarm join: not a token", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, untouchable, out, swarmJoinOptions{token: "hunter2", remote: "192.168.33.10"})
		}, `invalid join token "hunter2": want SWMTKN-1-, 50 and 25 characters of 0-9a-z joined by -`},
		{"swarm join: bad port", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, untouchable, out, swarmJoinOptions{token: workerToken, remote: "192.168.33.10:http"})
		}, `invalid manager address "192.168.33.10:http": port "http": want 1 to 65535`},
		{"swarm join: no host", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, untouchable, out, swarmJoinOptions{token: workerToken, remote: ":2377"})
		}, `invalid manager address ":2377": no host`},
		{"swarm join: not an address", func(ctx context.Context, out io.Writer) error {
			return runSwarmJoin(ctx, untouchable, out, swarmJoinOptions{token: workerToken, remote: "a:b:c"})
		}, `invalid manager address "a:b:c": want HOST[:PORT]`},
		{"swarm leave: meshd down", func(ctx context.Context, out io.Writer) error {
			return runSwarmLeave(ctx, broken, out, swarmLeaveOptions{})
		}, "cannot reach meshd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tt.run(context.Background(), &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got a multi-line error %q, want one line", err)
			}
			if out.Len() > 0 {
				t.Errorf("got output %q before the error, want none", out.String())
			}
		})
	}
	if len(m.ran) > 0 {
		t.Errorf("ran %q, want nothing run after a failure", m.ran)
	}
}
