package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
)

// failFast gives the agent a resolver whose upstream fails at once, so
// that a name it does not know answers no address without a timeout.
func failFast(t *testing.T, f *fakeNode) {
	t.Helper()
	cfg := dns.DefaultConfig()
	cfg.Upstreams, cfg.Logger = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}, testLogger(t)
	cfg.Exchange = func(context.Context, *mdns.Msg, netip.AddrPort, string) (*mdns.Msg, error) {
		return nil, errors.New("no upstream in this test")
	}
	res, err := dns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.agent.dns.Close()
	f.agent.dns = res
}

// links are the names of a namespace's links with their addresses.
func (f *fakeNode) links(ns string) map[string][]netip.Prefix {
	f.t.Helper()
	ls, err := f.kernel.ListLinks(ns)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]netip.Prefix{}
	for _, l := range ls {
		out[l.Name] = l.Addrs
	}
	return out
}

// ownPeers are the addresses this node announces on a network (as
// another node reads them).
func ownPeers(f *fakeNode, netID string) []netip.Addr {
	peers, _ := records.RemotePeers(f.db, netID, "node2id")
	var out []netip.Addr
	for _, p := range peers {
		out = append(out, p.IP)
	}
	return out
}

// TestContainerConnectLive: network connect of a running container on
// an attachable overlay gives it eth2 on the second overlay (eth1 is its
// gateway link) without restarting it: its names are announced there, its
// resolver sees that network's names, and this node builds the network's
// load-balancing sandbox, which it had none of. Disconnect undoes each,
// and a connect again takes the freed eth2.
func TestContainerConnectLive(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	failFast(t, f)
	for _, name := range []string{"ovnet", "ov2"} {
		if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: name, Attachable: true}); err != nil {
			t.Fatal(err)
		}
	}
	// www runs on node2 only: this node has nothing on ov2 until connect.
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(1),
		Constraints: []string{"node.hostname==node2"}, Networks: []api.NetworkAttachment{{Target: "ov2"}}}); err != nil {
		t.Fatal(err)
	}
	ovnet, ov2 := f.netID("ovnet"), f.netID("ov2")
	www := f.tasks("www")["node2id"]
	if www.ID == "" {
		t.Fatalf("www's task is not on node2: %v", f.tasks("www"))
	}
	f.announceRemote(www)
	c1, err := f.mgr.RunContainer(f.ctx, "node1id", api.ContainerCreate{Name: "c1", Image: "alpine", Cmd: []string{"sleep", "1000"},
		Networks: []api.ContainerAttach{{Network: "ovnet", Aliases: []string{"box"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "c1 running and announced", func() error {
		if !slices.Contains(f.runner.Running(), c1.ID) || !records.HasEndpoint(f.db, ovnet, c1.ID) {
			return fmt.Errorf("running %v, endpoints %v", f.runner.Running(), records.Endpoints(f.db, records.AllNetworks))
		}
		return nil
	})
	f.reconcile()
	box := f.agent.tasks[c1.ID].sandbox
	vip := vipOn(f.mgr.Objects().Services[www.ServiceID], ov2).String()
	wwwAddr := api.AddrOf(www.Networks[0].Addr).String()
	if got := f.resolve(box, "www."); got != nil {
		t.Fatalf("before connect, c1 resolves www to %v", got)
	}
	if _, ok := f.agent.sboxes[ov2]; ok {
		t.Fatalf("an ov2 sandbox before any task here is on ov2")
	}
	if l := f.links(box); len(l) != 2 || l["eth0"] == nil || l["eth1"] == nil {
		t.Fatalf("c1's links before connect: %v", l)
	}

	connected, err := f.mgr.ConnectContainer(f.ctx, "node1id", "c1", api.ContainerAttach{Network: "ov2", Aliases: []string{"box2"}})
	if err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.reconcile() // the names announced since
	c1Ov2 := api.AddrOf(connected.Networks[1].Addr)
	if l := f.links(box); !slices.Contains(l["eth2"], netip.MustParsePrefix(connected.Networks[1].Addr)) || l["eth1"] == nil {
		t.Errorf("c1's links after connect: %v, want eth2 with %s", l, connected.Networks[1].Addr)
	}
	starts := f.runner.Starts(c1.ID)
	if starts != 1 || !slices.Contains(f.runner.Running(), c1.ID) {
		t.Errorf("c1 started %d times, running %v: a connect restarted it", starts, slices.Contains(f.runner.Running(), c1.ID))
	}
	var rec records.Endpoint
	for _, e := range records.Endpoints(f.db, ov2) {
		if e.TaskID == c1.ID {
			rec = e.Endpoint
		}
	}
	if rec.Name != "c1" || rec.IP != c1Ov2 || !slices.Equal(rec.Aliases, []string{"box2", c1.ContainerID()[:12]}) {
		t.Errorf("c1's endpoint on ov2: %+v", rec)
	}
	if !slices.Contains(ownPeers(f, ov2), c1Ov2) {
		t.Errorf("c1's VXLAN peer entry on ov2 not announced: %v", ownPeers(f, ov2))
	}
	if _, ok := f.agent.sboxes[ov2]; !ok {
		t.Errorf("no ov2 sandbox on this node after connect")
	}
	hostsFile := filepath.Join(f.agent.taskDir(c1), "hosts")
	if b, _ := os.ReadFile(hostsFile); !strings.Contains(string(b), c1Ov2.String()+"\t") {
		t.Errorf("c1's /etc/hosts after connect lacks %s:\n%s", c1Ov2, b)
	}
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"www.", []string{vip}},
		{"tasks.www.", []string{wwwAddr}},
		{"box2.", []string{c1Ov2.String()}},
		{"box.", []string{api.AddrOf(c1.Networks[0].Addr).String()}},
	} {
		if got := f.resolve(box, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("after connect, c1 asks %s: %v, want %v", tt.name, got, tt.want)
		}
	}

	if _, err := f.mgr.DisconnectContainer(f.ctx, "node1id", "c1", "ov2"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.reconcile() // the network and sandbox no longer needed
	if l := f.links(box); l["eth2"] != nil || l["eth0"] == nil || l["eth1"] == nil {
		t.Errorf("c1's links after disconnect: %v", l)
	}
	if records.HasEndpoint(f.db, ov2, c1.ID) {
		t.Errorf("c1 still named on ov2")
	}
	if slices.Contains(ownPeers(f, ov2), c1Ov2) {
		t.Errorf("c1's VXLAN peer entry on ov2 kept")
	}
	if b, _ := os.ReadFile(hostsFile); strings.Contains(string(b), c1Ov2.String()) || !strings.Contains(string(b), api.AddrOf(c1.Networks[0].Addr).String()) {
		t.Errorf("c1's /etc/hosts after disconnect:\n%s", b)
	}
	starts = f.runner.Starts(c1.ID)
	if starts != 1 || !slices.Contains(f.runner.Running(), c1.ID) {
		t.Errorf("c1 started %d times: a disconnect restarted it", starts)
	}
	for _, name := range []string{"www.", "box2."} {
		if got := f.resolve(box, name); got != nil {
			t.Errorf("after disconnect, c1 resolves %s to %v", name, got)
		}
	}
	if _, ok := f.agent.sboxes[ov2]; ok {
		t.Errorf("the ov2 sandbox kept after disconnect")
	}
	if _, ok := f.agent.nets[ov2]; ok {
		t.Errorf("the ov2 overlay kept here after disconnect")
	}

	again, err := f.mgr.ConnectContainer(f.ctx, "node1id", "c1", api.ContainerAttach{Network: "ov2"})
	if err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(box); !slices.Contains(l["eth2"], netip.MustParsePrefix(again.Networks[1].Addr)) || len(l) != 3 {
		t.Errorf("c1's links after a second connect: %v, want eth2 again", l)
	}
	// A kernel change in the sandbox repairs its links under the names
	// they have (the gateway's is not eth<len(networks)> now).
	f.agent.tasks[c1.ID].checkStack = true
	f.reconcile()
	if l := f.links(box); len(l) != 3 || l["eth2"] == nil {
		t.Errorf("c1's links after a repair: %v", l)
	}
}

// TestContainerConnectGateway: a container on an internal overlay only
// has no gateway link; a connect to a network that is not internal gives
// it one (a free ethN, after the new network's), a disconnect from it
// takes it away again, still without a restart.
func TestContainerConnectGateway(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	for _, req := range []api.NetworkCreate{{Name: "secret", Attachable: true, Internal: true}, {Name: "ovnet", Attachable: true}} {
		if _, err := f.mgr.CreateNetwork(f.ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	c1, err := f.mgr.RunContainer(f.ctx, "node1id", api.ContainerCreate{Name: "c1", Image: "alpine", Cmd: []string{"sleep", "1000"},
		Networks: []api.ContainerAttach{{Network: "secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "c1 running", func() error {
		if !slices.Contains(f.runner.Running(), c1.ID) {
			return fmt.Errorf("running %v", f.runner.Running())
		}
		return nil
	})
	lt := f.agent.tasks[c1.ID]
	gwNet := netip.MustParsePrefix("172.18.0.0/16")
	onGateway := func(l map[string][]netip.Prefix) string {
		for name, addrs := range l {
			for _, p := range addrs {
				if gwNet.Contains(p.Addr()) {
					return name
				}
			}
		}
		return ""
	}
	if l := f.links(lt.sandbox); len(l) != 1 || onGateway(l) != "" || lt.gwVeth != "" {
		t.Fatalf("c1 on an internal network only: links %v, gateway veth %q", l, lt.gwVeth)
	}
	if _, err := f.mgr.ConnectContainer(f.ctx, "node1id", "c1", api.ContainerAttach{Network: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(lt.sandbox); len(l) != 3 || l["eth1"] == nil || onGateway(l) != "eth2" || !f.agent.Gateway().Tasks[c1.ID].IsValid() {
		t.Errorf("after a connect to ovnet: links %v, want eth1 on ovnet and eth2 on the gateway bridge (gateway %v)", l, f.agent.Gateway().Tasks)
	}
	if _, err := f.mgr.DisconnectContainer(f.ctx, "node1id", "c1", "ovnet"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(lt.sandbox); len(l) != 1 || l["eth0"] == nil || lt.gwVeth != "" || f.agent.Gateway().Tasks[c1.ID].IsValid() {
		t.Errorf("after a disconnect from ovnet: links %v, gateway veth %q", l, lt.gwVeth)
	}
	// Its last network too, as docker's: loopback only, no way out; a
	// connect gives both back.
	if _, err := f.mgr.DisconnectContainer(f.ctx, "node1id", "c1", "secret"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(lt.sandbox); len(l) != 0 || lt.gwVeth != "" || !slices.Contains(f.runner.Running(), c1.ID) {
		t.Errorf("after a disconnect from its last network: links %v, gateway veth %q, running %v", l, lt.gwVeth, f.runner.Running())
	}
	if _, err := f.mgr.ConnectContainer(f.ctx, "node1id", "c1", api.ContainerAttach{Network: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(lt.sandbox); len(l) != 2 || l["eth0"] == nil || onGateway(l) != "eth1" {
		t.Errorf("after a connect from no network: links %v, want eth0 on ovnet and eth1 on the gateway bridge", l)
	}
	if n := f.runner.Starts(c1.ID); n != 1 {
		t.Errorf("c1 started %d times", n)
	}
}

// TestServiceTaskConnectLive: network connect of a service's running task
// gives it a new ethN live, without a restart; there it is named as
// Docker names a connected container (its container name, aliases and
// short ID), not as its service's backend, while its service's network
// keeps the service's record. Disconnect takes both link and name away.
func TestServiceTaskConnectLive(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	for _, name := range []string{"ovnet", "ov2"} {
		if _, err := f.mgr.CreateNetwork(f.ctx, api.NetworkCreate{Name: name, Attachable: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(1),
		Constraints: []string{"node.hostname==node1"}, Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	ovnet, ov2 := f.netID("ovnet"), f.netID("ov2")
	www := f.tasks("www")["node1id"]
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "www running and announced", func() error {
		if !slices.Contains(f.runner.Running(), www.ID) || !records.HasEndpoint(f.db, ovnet, www.ID) {
			return fmt.Errorf("running %v", f.runner.Running())
		}
		return nil
	})
	box := f.agent.tasks[www.ID].sandbox
	connected, err := f.mgr.ConnectContainer(f.ctx, "node1id", "www.1", api.ContainerAttach{Network: "ov2", Aliases: []string{"w2"}})
	if err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	f.reconcile()
	if l := f.links(box); !slices.Contains(l["eth2"], netip.MustParsePrefix(connected.Networks[1].Addr)) || l["eth0"] == nil || l["eth1"] == nil {
		t.Errorf("www.1's links after connect: %v, want eth2 with %s", l, connected.Networks[1].Addr)
	}
	if n := f.runner.Starts(www.ID); n != 1 {
		t.Errorf("www.1 started %d times: a connect restarted it", n)
	}
	byNet := map[string]records.Endpoint{}
	for _, e := range records.Endpoints(f.db, records.AllNetworks) {
		if e.TaskID == www.ID {
			byNet[e.Network] = e.Endpoint
		}
	}
	want := records.Endpoint{Name: "www.1." + www.ID, IP: api.AddrOf(connected.Networks[1].Addr), Aliases: []string{"w2", www.ContainerID()[:12]}}
	if got := byNet[ov2]; got.Name != want.Name || got.IP != want.IP || !slices.Equal(got.Aliases, want.Aliases) || got.ServiceID != "" || got.VIP.IsValid() {
		t.Errorf("www.1's endpoint on ov2: %+v, want %+v", got, want)
	}
	if got := byNet[ovnet]; got.ServiceID != www.ServiceID || !got.VIP.IsValid() {
		t.Errorf("www.1's endpoint on its service's network: %+v", got)
	}
	// The reconcile that follows leaves what connect made.
	f.agent.tasks[www.ID].checkStack = true
	f.reconcile()
	if l := f.links(box); len(l) != 3 || l["eth2"] == nil {
		t.Errorf("www.1's links after a repair: %v", l)
	}

	if _, err := f.mgr.DisconnectContainer(f.ctx, "node1id", "www.1", "ov2"); err != nil {
		t.Fatal(err)
	}
	f.reconcile()
	if l := f.links(box); l["eth2"] != nil || len(l) != 2 {
		t.Errorf("www.1's links after disconnect: %v", l)
	}
	if records.HasEndpoint(f.db, ov2, www.ID) || !records.HasEndpoint(f.db, ovnet, www.ID) {
		t.Errorf("after disconnect: named on ov2 %v, on ovnet %v", records.HasEndpoint(f.db, ov2, www.ID), records.HasEndpoint(f.db, ovnet, www.ID))
	}
	if n := f.runner.Starts(www.ID); n != 1 {
		t.Errorf("www.1 started %d times: a disconnect restarted it", n)
	}
}
