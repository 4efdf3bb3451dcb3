package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// The commands whose output is short or depends on what they sent: the
// expectations stay inline.

// failed checks err against wantErr, a substring ("" = no error wanted),
// and reports whether the call failed, which ends a table case.
func failed(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("got error %v, want none", err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("got error %v, want one containing %q", err, wantErr)
	}
	return err != nil
}

func TestServiceRequest(t *testing.T) {
	two := 2
	tests := []struct {
		name        string
		opts        serviceCreateOptions
		replicasSet bool
		args        []string
		dash        int
		want        api.ServiceCreate
		wantErr     string
	}{
		{name: "image", opts: serviceCreateOptions{name: "www", endpointMode: "vip"}, args: []string{"whoami"}, dash: -1,
			want: api.ServiceCreate{Name: "www", Image: "whoami:latest", EndpointMode: "vip"}},
		{name: "image with arguments and replicas", opts: serviceCreateOptions{name: "web", replicas: 2, endpointMode: "vip"}, replicasSet: true,
			args: []string{"nginx:1.25", "-g", "daemon off;"}, dash: 1,
			want: api.ServiceCreate{Name: "web", Image: "nginx:1.25", Args: []string{"-g", "daemon off;"}, Replicas: &two, EndpointMode: "vip"}},
		{name: "host command", opts: serviceCreateOptions{name: "dns", endpointMode: "dnsrr"}, args: []string{"dnsmasq", "-k"}, dash: 0,
			want: api.ServiceCreate{Name: "dns", Args: []string{"dnsmasq", "-k"}, EndpointMode: "dnsrr"}},
		{name: "networks, aliases and ports", opts: serviceCreateOptions{name: "www",
			networks: []string{"ovnet", "name=backend,alias=api"}, aliases: []string{"web"}, publish: []string{"8888:80", "5353:53/udp"}},
			args: []string{"whoami"}, dash: -1,
			want: api.ServiceCreate{Name: "www", Image: "whoami:latest",
				Networks: []api.NetworkAttachment{{Target: "ovnet", Aliases: []string{"web"}}, {Target: "backend", Aliases: []string{"api", "web"}}},
				Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8888, PublishMode: "ingress"},
					{Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "ingress"}}}},
		{name: "nothing to run", opts: serviceCreateOptions{name: "x"}, dash: -1, wantErr: "service create needs an image or a command after --"},
		{name: "image and command, as docker's", opts: serviceCreateOptions{name: "x"}, args: []string{"alpine", "sleep", "50000"}, dash: -1,
			want: api.ServiceCreate{Name: "x", Image: "alpine:latest", Args: []string{"sleep", "50000"}}},
		{name: "image, then --", opts: serviceCreateOptions{name: "x"}, args: []string{"whoami", "--", "--port", "81"}, dash: -1,
			want: api.ServiceCreate{Name: "x", Image: "whoami:latest", Args: []string{"--port", "81"}}},
		{name: "no name", args: []string{"whoami"}, dash: -1, wantErr: "service create needs --name"},
		{name: "bad network", opts: serviceCreateOptions{name: "x", networks: []string{"name=ovnet,color=red"}}, args: []string{"whoami"}, dash: -1,
			wantErr: `invalid --network "name=ovnet,color=red": unknown key "color" (want name=, alias=)`},
		{name: "network without name", opts: serviceCreateOptions{name: "x", networks: []string{"alias=a"}}, args: []string{"whoami"}, dash: -1,
			wantErr: `invalid --network "alias=a": no name=`},
		{name: "bad port", opts: serviceCreateOptions{name: "x", publish: []string{"8888:80/sctp"}}, args: []string{"whoami"}, dash: -1,
			wantErr: "unknown protocol"},
		{name: "alias without network", opts: serviceCreateOptions{name: "x", aliases: []string{"a"}}, args: []string{"whoami"}, dash: -1,
			wantErr: "--network-alias needs a --network"},
		{name: "restart policy", opts: serviceCreateOptions{name: "t", restart: restartOptions{set: true, condition: "on-failure",
			delay: time.Second, maxAttempts: 2, window: time.Minute}}, args: []string{"sh", "-c", "exit 3"}, dash: 0,
			want: api.ServiceCreate{Name: "t", Args: []string{"sh", "-c", "exit 3"},
				RestartPolicy: &api.RestartPolicy{Condition: "on-failure", Delay: time.Second, MaxAttempts: 2, Window: time.Minute}}},
		{name: "bad restart condition", opts: serviceCreateOptions{name: "t", restart: restartOptions{set: true, condition: "always"}},
			args: []string{"whoami"}, dash: -1, wantErr: `invalid --restart-condition "always": want none, on-failure or any`},
		{name: "negative restart delay", opts: serviceCreateOptions{name: "t", restart: restartOptions{set: true, condition: "any", delay: -time.Second}},
			args: []string{"whoami"}, dash: -1, wantErr: "invalid --restart-delay -1s"},
		{name: "negative max attempts", opts: serviceCreateOptions{name: "t", restart: restartOptions{set: true, condition: "any", maxAttempts: -1}},
			args: []string{"whoami"}, dash: -1, wantErr: "invalid --restart-max-attempts -1"},
		{name: "negative window", opts: serviceCreateOptions{name: "t", restart: restartOptions{set: true, condition: "any", window: -time.Second}},
			args: []string{"whoami"}, dash: -1, wantErr: "invalid --restart-window -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serviceRequest(tt.opts, tt.replicasSet, tt.args, tt.dash)
			if failed(t, err, tt.wantErr) {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceCreateWaits(t *testing.T) {
	fake := newFakeAPI()
	var sent api.ServiceCreate
	fake.createServiceFunc = func(req api.ServiceCreate) (api.Service, error) {
		sent = req
		return api.Service{ID: "newsvc0000000000000000000", Name: req.Name}, nil
	}
	polls := 0
	fake.serviceFunc = func(string) (api.Service, error) {
		// Running at once, reachable from every node only later: the
		// wait goes on until then.
		polls++
		return api.Service{ID: "newsvc0000000000000000000", Name: "www", Replicas: 2, Running: 2, Reachable: min(2, polls-1)}, nil
	}
	fake.tasksFunc = func(service, node string) ([]api.Task, error) {
		if service != "newsvc0000000000000000000" || node != "" {
			t.Errorf("Tasks(%q, %q), want the new service's on every node", service, node)
		}
		return []api.Task{{Slot: 1, DesiredState: "running", Status: api.TaskStatus{State: "running"}}, {Slot: 2, DesiredState: "running", Status: api.TaskStatus{State: "running"}}}, nil
	}
	req := api.ServiceCreate{Name: "www", Image: "whoami:latest"}
	var out bytes.Buffer
	err := runServiceCreate(context.Background(), fake, &out, serviceCreateOptions{req: req, wait: waitOptions{timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if polls < 3 {
		t.Errorf("converged after %d polls, before every task was reachable", polls)
	}
	if diff := cmp.Diff(req, sent); diff != "" {
		t.Errorf("sent request mismatch (-want +got):\n%s", diff)
	}
	want := "newsvc0000000000000000000\noverall progress: 2 out of 2 tasks\n1/2: running   [==================================================>]\n2/2: running   [==================================================>]\nverify: Service converged\n"
	if got := out.String(); got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}

func TestServiceScale(t *testing.T) {
	fake := newFakeAPI()
	var scaled []string
	fake.scaleServiceFunc = func(ref string, n int) (api.Service, error) {
		scaled = append(scaled, ref+"="+strconv.Itoa(n))
		return lookup(testServices, "service", ref, func(s api.Service) (string, string) { return s.ID, s.Name })
	}
	var out bytes.Buffer
	err := runServiceScale(context.Background(), fake, &out, serviceScaleOptions{scales: []string{"www=3", "idle=0"}, wait: waitOptions{detach: true}})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if diff := cmp.Diff([]string{"www=3", "idle=0"}, scaled); diff != "" {
		t.Errorf("scale calls mismatch (-want +got):\n%s", diff)
	}
	if got, want := out.String(), "www scaled to 3\nidle scaled to 0\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
	// Waiting: www has 1 of 2 tasks running and one failed, so it times
	// out naming the failure, after saying what it scaled.
	out.Reset()
	err = runServiceScale(context.Background(), fake, &out, serviceScaleOptions{scales: []string{"www=2"}})
	want := "service www did not converge in 0s: 1 out of 2 tasks running, 0 reachable from every node (www.2: start task: exec whoami: the network ovnet has no address left for this task, try a larger subnet\nsecond line)"
	if err == nil || err.Error() != want {
		t.Errorf("got error %v, want %q", err, want)
	}
	if got, want := out.String(), "www scaled to 2\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}

func TestRm(t *testing.T) {
	var removed []string
	rm := func(_ context.Context, ref string) error {
		if ref == "ingress" {
			return errors.New("network ingress is in use by service www")
		}
		removed = append(removed, ref)
		return nil
	}
	var out bytes.Buffer
	err := runRm(context.Background(), rm, &out, []string{"ovnet", "ingress", "backend"})
	if want := "network ingress is in use by service www"; err == nil || err.Error() != want {
		t.Errorf("got error %v, want %q", err, want)
	}
	if got, want := out.String(), "ovnet\nbackend\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"ovnet", "backend"}, removed); diff != "" {
		t.Errorf("removed mismatch (-want +got):\n%s", diff)
	}
}

func TestNodeRmForce(t *testing.T) {
	fake := newFakeAPI()
	var got []string
	fake.removeNodeFunc = func(ref string, force bool) error {
		if !force {
			t.Errorf("RemoveNode(%q) without force, want force", ref)
		}
		got = append(got, ref)
		return nil
	}
	var out bytes.Buffer
	if err := runNodeRm(context.Background(), fake, &out, nodeRmOptions{refs: []string{"node2", "node3"}, force: true}); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if out.String() != "node2\nnode3\n" || len(got) != 2 {
		t.Errorf("got output %q after removing %q, want both nodes", out.String(), got)
	}
}

func TestNodeUpdate(t *testing.T) {
	fake := newFakeAPI()
	fake.updateNodeFunc = func(ref string, u api.NodeUpdate) (api.Node, error) {
		if ref != "w1iw" || u.Availability != "drain" {
			t.Errorf("UpdateNode(%q, %+v), want w1iw to drain", ref, u)
		}
		n := threeNodes[2]
		n.Availability = "Drain"
		return n, nil
	}
	var out bytes.Buffer
	if err := runNodeUpdate(context.Background(), fake, &out, nodeUpdateOptions{ref: "w1iw", availability: "drain"}); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if got, want := out.String(), "node3\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}

func TestNodeRoles(t *testing.T) {
	tests := []struct {
		name    string
		run     func(ctx context.Context, cl nodeAPI, out io.Writer, refs []string) error
		refs    []string
		updated []string // UpdateNode calls, ref=role
		want    string
		wantErr string
	}{
		{name: "promote", run: runNodePromote, refs: []string{"node3", "8bau"},
			updated: []string{"node3=manager", "8bau=manager"},
			want:    "Node node3 promoted to a manager in the swarm.\nNode 8bau promoted to a manager in the swarm.\n"},
		{name: "promote a manager", run: runNodePromote, refs: []string{"node1"},
			want: "Node vrto8yiuht7u28ey3faajwvr8 is already a manager.\n"},
		{name: "demote", run: runNodeDemote, refs: []string{"node1"}, updated: []string{"node1=worker"},
			want: "Manager node1 demoted in the swarm.\n"},
		{name: "demote a worker", run: runNodeDemote, refs: []string{"node2"},
			want: "Node 8bau2aslhpnjxxq1e0p5ohm3u is already a worker.\n"},
		// One failure does not stop the others; each is in the error.
		{name: "failures", run: runNodePromote, refs: []string{"node9", "node2", "node3"}, updated: []string{"node2=manager", "node3=manager"},
			want:    "Node node2 promoted to a manager in the swarm.\n",
			wantErr: "node node9 not found; " + api.ErrNoLeader.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			var updated []string
			fake.updateNodeFunc = func(ref string, u api.NodeUpdate) (api.Node, error) {
				updated = append(updated, ref+"="+u.Role)
				if u.Availability != "" {
					t.Errorf("UpdateNode(%q, %+v) changes the availability, want the role only", ref, u)
				}
				if tt.wantErr != "" && ref == "node3" {
					return api.Node{}, api.ErrNoLeader
				}
				return api.Node{}, nil
			}
			var out bytes.Buffer
			err := tt.run(context.Background(), fake, &out, tt.refs)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.updated, updated); diff != "" {
				t.Errorf("UpdateNode calls mismatch (-want +got):\n%s", diff)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNetworkCreate(t *testing.T) {
	fake := newFakeAPI()
	var sent api.NetworkCreate
	fake.createNetworkFunc = func(req api.NetworkCreate) (api.Network, error) {
		sent = req
		return api.Network{ID: "newnet0000000000000000000"}, nil
	}
	opts := networkCreateOptions{name: "backend", driver: "overlay", subnet: "10.0.2.0/24", ipRange: "10.0.2.128/25",
		aux: []string{"router=10.0.2.254", "dns=10.0.2.253"}, internal: true, attachable: true}
	var out bytes.Buffer
	if err := runNetworkCreate(context.Background(), fake, &out, opts); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := api.NetworkCreate{Name: "backend", Driver: "overlay", Subnet: "10.0.2.0/24", IPRange: "10.0.2.128/25",
		AuxAddresses: map[string]string{"router": "10.0.2.254", "dns": "10.0.2.253"}, Internal: true, Attachable: true}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("sent request mismatch (-want +got):\n%s", diff)
	}
	if got, want := out.String(), "newnet0000000000000000000\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}

func TestJoinToken(t *testing.T) {
	tests := []struct {
		name string
		opts joinTokenOptions
		want string
	}{
		{name: "quiet", opts: joinTokenOptions{role: "worker", quiet: true}, want: workerToken + "\n"},
		{name: "quiet manager", opts: joinTokenOptions{role: "manager", quiet: true}, want: managerToken + "\n"},
		// docker prints only the new token, without the rotation notice.
		{name: "quiet rotate", opts: joinTokenOptions{role: "worker", quiet: true, rotate: true},
			want: workerToken[:len(workerToken)-4] + "next\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			var calls []string
			get := fake.joinTokenFunc
			fake.joinTokenFunc = func(role string, rotate bool) (api.JoinToken, error) {
				calls = append(calls, fmt.Sprintf("%s rotate=%v", role, rotate))
				return get(role, rotate)
			}
			var out bytes.Buffer
			if err := runJoinToken(context.Background(), fake, &out, tt.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got output %q, want %q", got, tt.want)
			}
			want := []string{fmt.Sprintf("%s rotate=%v", tt.opts.role, tt.opts.rotate)}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("JoinToken calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSwarmInit(t *testing.T) {
	fake := newFakeAPI()
	var sent []api.SwarmInit
	fake.swarmInitFunc = func(req api.SwarmInit) (api.SwarmInitResponse, error) {
		sent = append(sent, req)
		return newFakeAPI().swarmInitFunc(req)
	}
	var out bytes.Buffer
	if err := runSwarmInit(context.Background(), fake, &out, swarmInitOptions{advertiseAddr: "192.168.33.10"}); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if diff := cmp.Diff([]api.SwarmInit{{AdvertiseAddr: "192.168.33.10"}}, sent); diff != "" {
		t.Errorf("sent mismatch (-want +got):\n%s", diff)
	}
}

func TestSwarmJoin(t *testing.T) {
	tests := []struct {
		name   string
		opts   swarmJoinOptions
		remote string // RemoteAddr sent
		want   string
	}{
		{name: "worker, default port", opts: swarmJoinOptions{token: workerToken, remote: "192.168.33.10"},
			remote: "192.168.33.10:2377", want: "This node joined a swarm as a worker.\n"},
		{name: "manager, port kept", opts: swarmJoinOptions{token: managerToken, remote: "192.168.33.10:4000", advertiseAddr: "192.168.33.11"},
			remote: "192.168.33.10:4000", want: "This node joined a swarm as a manager.\n"},
		{name: "name", opts: swarmJoinOptions{token: workerToken, remote: "node1"}, remote: "node1:2377", want: "This node joined a swarm as a worker.\n"},
		{name: "IPv6 bare", opts: swarmJoinOptions{token: workerToken, remote: "fd00::10"}, remote: "[fd00::10]:2377", want: "This node joined a swarm as a worker.\n"},
		{name: "IPv6 in brackets", opts: swarmJoinOptions{token: workerToken, remote: "[fd00::10]"}, remote: "[fd00::10]:2377", want: "This node joined a swarm as a worker.\n"},
		{name: "IPv6 with port", opts: swarmJoinOptions{token: workerToken, remote: "[fd00::10]:2378"}, remote: "[fd00::10]:2378", want: "This node joined a swarm as a worker.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			var sent []api.SwarmJoin
			fake.swarmJoinFunc = func(req api.SwarmJoin) (api.SwarmJoinResponse, error) {
				sent = append(sent, req)
				return newFakeAPI().swarmJoinFunc(req)
			}
			var out bytes.Buffer
			if err := runSwarmJoin(context.Background(), fake, &out, tt.opts); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			want := []api.SwarmJoin{{RemoteAddr: tt.remote, Token: tt.opts.token, AdvertiseAddr: tt.opts.advertiseAddr}}
			if diff := cmp.Diff(want, sent); diff != "" {
				t.Errorf("sent mismatch (-want +got):\n%s", diff)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSwarmLeave(t *testing.T) {
	for _, force := range []bool{false, true} {
		fake := newFakeAPI()
		var sent []api.SwarmLeave
		fake.swarmLeaveFunc = func(req api.SwarmLeave) error { sent = append(sent, req); return nil }
		var out bytes.Buffer
		if err := runSwarmLeave(context.Background(), fake, &out, swarmLeaveOptions{force: force}); err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if diff := cmp.Diff([]api.SwarmLeave{{Force: force}}, sent); diff != "" {
			t.Errorf("sent mismatch (-want +got):\n%s", diff)
		}
		if got, want := out.String(), "Node left the swarm.\n"; got != want {
			t.Errorf("got output %q, want %q", got, want)
		}
	}
}

func TestExec(t *testing.T) {
	tests := []struct {
		name string
		run  func(ctx context.Context, fake *fakeAPI, m *fakeMachine) error
		lab  []string
		want []string
	}{
		{name: "task on this node", run: func(ctx context.Context, fake *fakeAPI, m *fakeMachine) error {
			return runExec(ctx, fake, m, execOptions{task: "www.1", argv: []string{"dig", "+short", "tasks.www"}})
		}, want: []string{"nsenter", "-t", "4242", "-n", "-u", "-m", "-p", "--", "dig", "+short", "tasks.www"}},
		{name: "task on another node of the lab", lab: []string{"node1", "node2"}, run: func(ctx context.Context, fake *fakeAPI, m *fakeMachine) error {
			tk := testTasks[3] // www.2, on node2
			tk.Status = api.TaskStatus{State: "running", PID: 77}
			fake.tasksFunc = func(string, string) ([]api.Task, error) { return []api.Task{testTasks[0], tk}, nil }
			return runExec(ctx, fake, m, execOptions{task: "www.2", argv: []string{"sh"}})
		}, want: []string{"nsenter", "-t", "77", "-n", "-u", "-m", "-p", "--", "sh"}},
		{name: "ns exec", run: func(ctx context.Context, fake *fakeAPI, m *fakeMachine) error {
			return runNsExec(ctx, fake, m, nsExecOptions{name: "ingress_sbox", argv: []string{"iptables", "-t", "mangle", "-nvL"}})
		}, want: []string{"nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "--", "iptables", "-t", "mangle", "-nvL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &fakeMachine{labNodes: tt.lab}
			if err := tt.run(context.Background(), newFakeAPI(), m); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff([][]string{tt.want}, m.ran); diff != "" {
				t.Errorf("ran mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := runVersion(&out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "meshctl "+api.Version+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSwarmCA(t *testing.T) {
	calls := 0
	fake := &fakeAPI{caFunc: func(rotate bool) (api.SwarmCA, error) {
		calls++
		if rotate {
			return api.SwarmCA{Certs: [][]byte{[]byte("new"), []byte("old")}, Rotating: true}, nil
		}
		return api.SwarmCA{Certs: [][]byte{[]byte("old")}}, nil
	}}
	var out strings.Builder
	if err := runSwarmCA(context.Background(), fake, &out, swarmCAOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "-----BEGIN CERTIFICATE-----\nb2xk\n-----END CERTIFICATE-----\n" {
		t.Errorf("swarm ca:\n%s", got)
	}
	out.Reset()
	if err := runSwarmCA(context.Background(), fake, &out, swarmCAOptions{rotate: true}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "Root CA rotated") || strings.Count(got, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("swarm ca --rotate:\n%s", got)
	}
	if err := runSwarmInit(context.Background(), fake, &out, swarmInitOptions{certExpiry: time.Minute}); err == nil ||
		!strings.Contains(err.Error(), "--cert-expiry") {
		t.Errorf("swarm init --cert-expiry 1m: %v", err)
	}
}
