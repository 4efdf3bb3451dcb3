package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

func TestHostsAddrs(t *testing.T) {
	st := records.Objects{Networks: map[string]api.Network{
		"ingressid": {ID: "ingressid", Name: api.IngressName, Ingress: true},
		"ovnetid":   {ID: "ovnetid", Name: "ovnet"},
		"backid":    {ID: "backid", Name: "back"},
	}}
	tk := api.Task{Networks: []api.TaskNetwork{
		{NetworkID: "ingressid", Addr: "10.255.0.6/16"},
		{NetworkID: "backid", Addr: "10.0.1.7/24"},
		{NetworkID: "ovnetid", Addr: "10.0.0.5/24"},
	}}
	got := hostsAddrs(tk, st)
	want := []netip.Addr{netip.MustParseAddr("10.0.1.7"), netip.MustParseAddr("10.0.0.5")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("addresses (-want +got), ingress left out as Docker does:\n%s", diff)
	}
}

// A task's process starts with its own hosts, hostname and resolv.conf
// written in its dir, readable by all.
func TestTaskEtcFilesWritten(t *testing.T) {
	f := newServingNode(t, 2)
	st := f.mgr.Objects()
	if len(f.localTasks()) == 0 {
		t.Fatal("no task on this node")
	}
	for _, tk := range f.localTasks() {
		spec := f.runner.Spec(tk.ID)
		dir := filepath.Join(f.runDir, "tasks", tk.ID)
		var ov netip.Addr
		for _, tn := range tk.Networks {
			if !st.Networks[tn.NetworkID].Ingress {
				ov = api.AddrOf(tn.Addr)
			}
		}
		if !ov.IsValid() {
			t.Fatalf("task %s has no overlay address: %v", tk.Name(), tk.Networks)
		}
		for _, c := range []struct{ path, wantPath, want string }{
			{spec.HostsFile, filepath.Join(dir, "hosts"), string(task.RenderHosts(tk.Hostname(), []netip.Addr{ov}))},
			{spec.HostnameFile, filepath.Join(dir, "hostname"), tk.Hostname() + "\n"},
			{spec.ResolvConf, filepath.Join(dir, "resolv.conf"), task.ResolvConf},
		} {
			if c.path != c.wantPath {
				t.Errorf("task %s: spec names %q, want %q", tk.Name(), c.path, c.wantPath)
				continue
			}
			got, err := os.ReadFile(c.path)
			if err != nil {
				t.Errorf("task %s: %v", tk.Name(), err)
				continue
			}
			if diff := cmp.Diff(c.want, string(got)); diff != "" {
				t.Errorf("task %s: %s (-want +got):\n%s", tk.Name(), c.path, diff)
			}
			if fi, err := os.Stat(c.path); err != nil {
				t.Errorf("task %s: %v", tk.Name(), err)
			} else if fi.Mode().Perm() != 0o644 {
				t.Errorf("task %s: %s mode %v, want 0644", tk.Name(), c.path, fi.Mode().Perm())
			}
		}
	}
}
