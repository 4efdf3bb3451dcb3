package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// TestContainerOnAnOverlay: a standalone container the manager put on
// this node runs in a task's sandbox with no service: it is named by its
// name, its aliases and short ID on the overlay for every task (a remote
// container too), it resolves the services, an idle one runs the idle
// image, and a stop stops it at once, however long the drain delay.
func TestContainerOnAnOverlay(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	f.agent.cfg.DrainDelay = time.Hour
	if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: "ovnet", Attachable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	ovnet := f.netID("ovnet")
	c1, err := f.mgr.RunContainer(f.ctx, "node1id", api.ContainerCreate{Name: "c1", Image: "alpine", Cmd: []string{"sleep", "1000"},
		Networks: []api.ContainerAttach{{Network: "ovnet", Aliases: []string{"box"}}}})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := f.mgr.RunContainer(f.ctx, "node1id", api.ContainerCreate{Name: "fg", Image: "alpine", Cmd: []string{"nslookup", "www"},
		Idle: true, Networks: []api.ContainerAttach{{Network: "ovnet"}}})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := f.mgr.RunContainer(f.ctx, "node2id", api.ContainerCreate{Name: "rc", Image: "alpine",
		Networks: []api.ContainerAttach{{Network: "ovnet", Aliases: []string{"rbox"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.announceRemote(remote)
	f.announceRemote(f.tasks("www")["node2id"])
	www := f.tasks("www")["node1id"]
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "c1, fg and www.1 running and announced", func() error {
		for _, id := range []string{c1.ID, idle.ID, www.ID} {
			if !slices.Contains(f.runner.Running(), id) || !records.HasEndpoint(f.db, ovnet, id) {
				return fmt.Errorf("running %v, endpoints %v", f.runner.Running(), records.Endpoints(f.db, records.AllNetworks))
			}
		}
		return nil
	})
	f.reconcile() // the names announced since
	c1Spec, idleSpec := f.runner.Spec(c1.ID), f.runner.Spec(idle.ID)
	if c1Spec.Image != "alpine" || !slices.Equal(c1Spec.Args, []string{"sleep", "1000"}) || c1Spec.Hostname != c1.ContainerID()[:12] {
		t.Errorf("c1's process: %+v", c1Spec)
	}
	if idleSpec.Image != task.IdleImage || len(idleSpec.Args) != 0 {
		t.Errorf("an idle container runs %s %v, want %s alone", idleSpec.Image, idleSpec.Args, task.IdleImage)
	}
	for _, e := range records.Endpoints(f.db, ovnet) {
		if e.TaskID == c1.ID && (e.Name != "c1" || e.ServiceID != "" || e.Service != "" || e.VIP.IsValid() ||
			!slices.Equal(e.Aliases, []string{"box", c1.ContainerID()[:12]})) {
			t.Errorf("c1's endpoint: %+v", e)
		}
	}
	c1Addr, rcAddr := api.AddrOf(c1.Networks[0].Addr).String(), api.AddrOf(remote.Networks[0].Addr).String()
	vip := vipOn(f.mgr.Objects().Services[www.ServiceID], ovnet).String()
	c1Box, wwwBox := f.agent.tasks[c1.ID].sandbox, f.agent.tasks[www.ID].sandbox
	tests := []struct {
		from, sandbox, name string
		want                []string
	}{
		{"c1", c1Box, "www.", []string{vip}},
		{"c1", c1Box, "tasks.www.", wwwAddrs(f)},
		{"c1", c1Box, "rc.", []string{rcAddr}},
		{"www.1", wwwBox, "c1.", []string{c1Addr}},
		{"www.1", wwwBox, "box.", []string{c1Addr}},
		{"www.1", wwwBox, c1.ContainerID()[:12] + ".", []string{c1Addr}},
		{"www.1", wwwBox, "rbox.", []string{rcAddr}},
		{"www.1", wwwBox, "tasks.box.", nil}, // a container's alias is no service
	}
	for _, tt := range tests {
		if got := f.resolve(tt.sandbox, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("%s asks %s: %v, want %v", tt.from, tt.name, got, tt.want)
		}
	}

	if _, stopped := f.agent.StoppedTask(c1.ID); stopped {
		t.Errorf("a running container reported stopped")
	}
	if err := f.mgr.StopContainer(f.ctx, "node1id", "c1", nil); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	// The API's stop waits for this, and gives the managers the status.
	if code, stopped := f.agent.StoppedTask(c1.ID); !stopped || code == nil || *code != 143 {
		t.Errorf("after stop: stopped %v, exit status %v; want stopped, 143", stopped, code)
	}
	if slices.Contains(f.runner.Running(), c1.ID) || records.HasEndpoint(f.db, ovnet, c1.ID) {
		t.Errorf("a stopped container still runs or is named (drained like a service's task?)")
	}
	if _, ok := f.agent.tasks[c1.ID]; ok {
		t.Errorf("a stopped container's sandbox kept")
	}
	// Its output stays for docker logs until it is removed.
	logPath := f.agent.TaskLogPath(c1.ID)
	if err := os.WriteFile(logPath, []byte("hello\n"), 0o644); err != nil {
		t.Fatalf("a stopped container's directory is gone: %v", err)
	}
	f.reconcile()
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("a stopped container's output went before its rm: %v", err)
	}
	if err := f.mgr.RemoveContainer(f.ctx, "node1id", "c1", false); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if _, err := os.Stat(filepath.Dir(logPath)); !os.IsNotExist(err) {
		t.Errorf("a removed container's output kept: %v", err)
	}
}

// wwwAddrs are the addresses of www's tasks on ovnet, sorted.
func wwwAddrs(f *fakeNode) []string {
	var out []string
	for _, t := range f.tasks("www") {
		out = append(out, api.AddrOf(t.Networks[0].Addr).String())
	}
	slices.Sort(out)
	return out
}
