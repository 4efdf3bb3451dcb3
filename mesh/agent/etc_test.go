package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// dockerHosts is the start of every container's /etc/hosts, as Docker
// writes it.
const dockerHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

func TestRenderHosts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		want  string
	}{
		{"no overlay network", nil, dockerHosts},
		{"one network", []string{"10.0.0.5"}, dockerHosts + "10.0.0.5\te8698e425c43\n"},
		{"networks in attach order", []string{"10.0.1.7", "10.0.0.5", "fd00::5"},
			dockerHosts + "10.0.1.7\te8698e425c43\n10.0.0.5\te8698e425c43\nfd00::5\te8698e425c43\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []netip.Addr
			for _, a := range tc.addrs {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			if diff := cmp.Diff(tc.want, string(renderHosts("e8698e425c43", addrs))); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

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
		f.mu.Lock()
		spec := f.specs[tk.ID]
		f.mu.Unlock()
		dir := filepath.Join(f.runDir, "tasks", tk.ID)
		var ov netip.Addr
		for _, tn := range tk.Networks {
			if !st.Networks[tn.NetworkID].Ingress {
				ov = addrOf(tn.Addr)
			}
		}
		if !ov.IsValid() {
			t.Fatalf("task %s has no overlay address: %v", tk.Name(), tk.Networks)
		}
		for _, c := range []struct{ path, wantPath, want string }{
			{spec.HostsFile, filepath.Join(dir, "hosts"), dockerHosts + ov.String() + "\t" + tk.Hostname() + "\n"},
			{spec.HostnameFile, filepath.Join(dir, "hostname"), tk.Hostname() + "\n"},
			{spec.ResolvConf, filepath.Join(dir, "resolv.conf"), resolvConf},
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
