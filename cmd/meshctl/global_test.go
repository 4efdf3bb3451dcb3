package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// TestServiceCreateModeAndConstraints: --mode and --constraint reach the
// request as given (meshd parses the constraints, as dockerd does);
// --replicas with --mode global is docker's error before meshd is asked.
func TestServiceCreateModeAndConstraints(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    api.ServiceCreate
		wantErr string
	}{
		{name: "global", args: []string{"--mode", "global", "--name", "g", "whoami"},
			want: api.ServiceCreate{Name: "g", Image: "whoami:latest", Mode: "global", EndpointMode: "vip"}},
		{name: "replicated is the default, sent as before", args: []string{"--mode", "replicated", "--name", "r", "whoami"},
			want: api.ServiceCreate{Name: "r", Image: "whoami:latest", EndpointMode: "vip"}},
		{name: "constraints, in order", args: []string{"--name", "c", "--constraint", "node.hostname==node2", "--constraint", "node.labels.zone != b", "whoami"},
			want: api.ServiceCreate{Name: "c", Image: "whoami:latest", EndpointMode: "vip", Constraints: []string{"node.hostname==node2", "node.labels.zone != b"}}},
		{name: "replicas with global", args: []string{"--mode", "global", "--replicas", "2", "--name", "g", "whoami"},
			wantErr: "replicas can only be used with replicated mode"},
		{name: "unknown mode", args: []string{"--mode", "spread", "--name", "g", "whoami"},
			wantErr: `invalid --mode "spread": want replicated or global`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newServiceCreateCommand(&cli{})
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			var opts serviceCreateOptions
			opts.name, _ = cmd.Flags().GetString("name")
			opts.mode, _ = cmd.Flags().GetString("mode")
			opts.replicas, _ = cmd.Flags().GetInt("replicas")
			opts.endpointMode, _ = cmd.Flags().GetString("endpoint-mode")
			if c, _ := cmd.Flags().GetStringArray("constraint"); len(c) > 0 {
				opts.constraints = c
			}
			got, err := serviceRequest(opts, cmd.Flags().Changed("replicas"), cmd.Flags().Args(), -1)
			if failed(t, err, tt.wantErr) {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// The whole command refuses before reaching meshd, with docker's line.
	if _, err := execute(t, "service", "create", "--mode", "global", "--replicas", "3", "--name", "g", "whoami"); err == nil ||
		err.Error() != "replicas can only be used with replicated mode" {
		t.Errorf("got error %v, want docker's", err)
	}
}

// TestNodeUpdateLabels: --label-add and --label-rm become the request;
// KEY alone is an empty value, as docker's.
func TestNodeUpdateLabels(t *testing.T) {
	tests := []struct {
		name    string
		opts    nodeUpdateOptions
		want    api.NodeUpdate
		wantErr string
	}{
		{name: "add and remove", opts: nodeUpdateOptions{labelAdd: []string{"zone=a", "disk=ssd=fast", "flag"}, labelRm: []string{"old"}},
			want: api.NodeUpdate{LabelAdd: map[string]string{"zone": "a", "disk": "ssd=fast", "flag": ""}, LabelRm: []string{"old"}}},
		{name: "with availability", opts: nodeUpdateOptions{availability: "pause", labelRm: []string{"zone"}},
			want: api.NodeUpdate{Availability: "pause", LabelRm: []string{"zone"}}},
		{name: "no key", opts: nodeUpdateOptions{labelAdd: []string{"=a"}}, wantErr: `invalid --label-add "=a": want KEY=VALUE`},
		{name: "empty rm", opts: nodeUpdateOptions{labelRm: []string{""}}, wantErr: `invalid --label-rm ""`},
		{name: "nothing", wantErr: "nothing to update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent *api.NodeUpdate
			fake := newFakeAPI()
			fake.updateNodeFunc = func(ref string, u api.NodeUpdate) (api.Node, error) {
				sent = &u
				return threeNodes[1], nil
			}
			tt.opts.ref = "node2"
			var out bytes.Buffer
			err := runNodeUpdate(context.Background(), fake, &out, tt.opts)
			if failed(t, err, tt.wantErr) {
				if sent != nil {
					t.Errorf("sent %+v for a refused update", *sent)
				}
				return
			}
			if sent == nil {
				t.Fatal("nothing sent")
			}
			if diff := cmp.Diff(tt.want, *sent); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
			if got := out.String(); got != threeNodes[1].Hostname+"\n" {
				t.Errorf("got output %q, want the hostname", got)
			}
		})
	}
}

// TestServiceLsGlobal: MODE is global, REPLICAS counts the nodes' tasks,
// and --filter mode= matches it.
func TestServiceLsGlobal(t *testing.T) {
	fake := newFakeAPI()
	fake.servicesFunc = func() ([]api.Service, error) {
		return append(testServices[:1:1], api.Service{ID: "g1o3q5s7u9w1y3a5c7e9g1i3k", Name: "agent", Image: "whoami:latest", Mode: api.ModeGlobal,
			Replicas: 3, Running: 3, Endpoint: api.Endpoint{Mode: "vip"}}), nil
	}
	var out bytes.Buffer
	if err := runServiceLs(context.Background(), fake, &out, listOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "service-ls-global", out.String())
	out.Reset()
	if err := runServiceLs(context.Background(), fake, &out, listOptions{filter: []string{"mode=global"}, quiet: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "g1o3q5s7u9w1\n"; got != want {
		t.Errorf("mode=global: got %q, want %q", got, want)
	}
}

// TestServiceScaleGlobal: meshd's refusal is printed as docker's line.
func TestServiceScaleGlobal(t *testing.T) {
	fake := newFakeAPI()
	fake.scaleServiceFunc = func(ref string, _ int) (api.Service, error) {
		return api.Service{}, api.Invalid("%s: scale can only be used with replicated mode", ref)
	}
	err := runServiceScale(context.Background(), fake, &bytes.Buffer{}, serviceScaleOptions{scales: []string{"agent=2"}, wait: waitOptions{detach: true}})
	if err == nil || err.Error() != "agent: scale can only be used with replicated mode" {
		t.Errorf("got error %v, want docker's line", err)
	}
}

// TestWaitGlobal: a global service converges when every node's task
// runs; the progress has a line per node, as docker's, and a task moved
// off a drained node is no slot.
func TestWaitGlobal(t *testing.T) {
	node := func(id, state, desired string) api.Task {
		return api.Task{ID: "t" + id, ServiceName: "g", NodeID: id, DesiredState: desired, Status: api.TaskStatus{State: state}}
	}
	fake := newFakeAPI()
	fake.serviceFunc = func(string) (api.Service, error) {
		return api.Service{ID: "g", Name: "g", Mode: api.ModeGlobal, Replicas: 2, Reachable: 2, RestartPolicy: api.RestartPolicy{Condition: "any"}}, nil
	}
	fake.tasksFunc = func(string, string) ([]api.Task, error) {
		return []api.Task{node("vrto8yiuht7u28ey3faajwvr8", "running", "running"), node("w1iwq0mxp5dkq7cxxz0e3wlk2", "running", "running"),
			node("8bau0x3nsaxejk2cwmnyf0snd", "shutdown", "shutdown")}, nil
	}
	var out bytes.Buffer
	if err := waitConverged(context.Background(), fake, &out, "g", 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	want := "overall progress: 2 out of 2 tasks\nvrto8yiuht7u: running   [==================================================>]\nw1iwq0mxp5dk: running   [==================================================>]\nverify: Service converged\n"
	if got := out.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
