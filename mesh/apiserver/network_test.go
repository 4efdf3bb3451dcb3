package apiserver

import (
	"context"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
)

// TestNetworksOnEveryNode: network ls and inspect answer on a worker as on
// a manager, from the state the node knows, with the node's own networks;
// inspect shows the endpoints on that node (its tasks, its sandboxes on
// the network and on the gateway bridge) and the network's peers. A node
// in no swarm has host and none alone.
func TestNetworksOnEveryNode(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	ov, err := tc.m.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tc.m.CreateService(ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: ptr(2),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}, Ports: []api.PortConfig{{TargetPort: 80, PublishedPort: 8888}}})
	if err != nil {
		t.Fatal(err)
	}
	st := tc.m.Objects()
	var own []api.Task // the worker's (w2), sorted by ID as its fake gateway numbers them
	for _, id := range slices.Sorted(maps.Keys(st.Tasks)) {
		if tk := st.Tasks[id]; tk.NodeID == "w2" && tk.ServiceID == svc.ID && tk.Current() {
			own = append(own, tk)
		}
	}
	if len(own) == 0 {
		t.Fatal("no task of www on the worker")
	}
	ingress, err := st.NetworkID("ingress")
	if err != nil {
		t.Fatal(err)
	}
	mac := func(cidr string) string { return ipam.MAC(netip.MustParsePrefix(cidr).Addr()).String() }
	addrOn := func(tk api.Task, netID string) string {
		for _, tn := range tk.Networks {
			if tn.NetworkID == netID {
				return tn.Addr
			}
		}
		t.Fatalf("%s has no address on %s", tk.Name(), netID)
		return ""
	}
	ep := func(netID, key, name, cidr string) api.EndpointResource {
		return api.EndpointResource{Name: name, EndpointID: api.EndpointID(netID, key), MacAddress: mac(cidr), IPv4Address: cidr}
	}

	for _, c := range []struct {
		name   string
		client *api.Client
	}{{"manager", tc.follower}, {"worker", tc.worker}} {
		t.Run(c.name, func(t *testing.T) {
			nets, err := c.client.Networks(ctx)
			if err != nil {
				t.Fatalf("network ls: %v", err)
			}
			var rows [][3]string
			for _, n := range nets {
				rows = append(rows, [3]string{n.Name, n.Driver, n.Scope})
				if len(n.Containers) != 0 {
					t.Errorf("network ls gives %s's endpoints: %v", n.Name, n.Containers)
				}
			}
			want := [][3]string{{"host", "host", "local"}, {"ingress", "overlay", "swarm"}, {"mesh_gwbridge", "bridge", "local"},
				{"none", "null", "local"}, {"ovnet", "overlay", "swarm"}}
			if diff := cmp.Diff(want, rows); diff != "" {
				t.Errorf("network ls (-want +got):\n%s", diff)
			}

			got, err := c.client.Network(ctx, "ovnet")
			if err != nil {
				t.Fatalf("network inspect ovnet: %v", err)
			}
			wantEPs := map[string]api.EndpointResource{"lb-ovnet": ep(ov.ID, "lb-ovnet", "ovnet-endpoint", st.Networks[ov.ID].LBAddrs["w2"])}
			for _, tk := range own {
				wantEPs[tk.ContainerID()] = ep(ov.ID, tk.ContainerID(), tk.Name()+"."+tk.ID, addrOn(tk, ov.ID))
			}
			if diff := cmp.Diff(wantEPs, got.Containers); diff != "" {
				t.Errorf("ovnet's endpoints on node2 (-want +got):\n%s", diff)
			}
			if got.VNI() != "4097" || got.Subnet() != "10.0.0.0/24" || got.IPAM.Config[0].Gateway != "10.0.0.1" {
				t.Errorf("ovnet: VNI %q subnet %q gateway %q, want 4097 10.0.0.0/24 10.0.0.1", got.VNI(), got.Subnet(), got.IPAM.Config[0].Gateway)
			}
			if !slices.Contains(got.Peers, api.PeerInfo{Name: api.PeerName("w2", "node2"), IP: "192.168.33.11"}) {
				t.Errorf("ovnet's peers %v miss node2 at 192.168.33.11", got.Peers)
			}

			got, err = c.client.Network(ctx, "ingress")
			if err != nil {
				t.Fatalf("network inspect ingress: %v", err)
			}
			sbox := st.Networks[ingress].LBAddrs["w2"]
			if g := got.Containers["ingress-sbox"]; g != ep(ingress, "ingress-sbox", "ingress-endpoint", sbox) {
				t.Errorf("ingress-sbox on ingress = %+v, want ingress-endpoint at %s", g, sbox)
			}
			if len(got.Containers) != 1+len(own) || !got.Ingress {
				t.Errorf("ingress: %d endpoints (want the sandbox and %d tasks), Ingress %v", len(got.Containers), len(own), got.Ingress)
			}

			// The tutorials inspect docker_gwbridge: it names the gateway bridge.
			gw, err := c.client.Network(ctx, "docker_gwbridge")
			if err != nil {
				t.Fatalf("network inspect docker_gwbridge: %v", err)
			}
			wantEPs = map[string]api.EndpointResource{"ingress-sbox": ep(gw.ID, "ingress-sbox", "gateway_ingress-sbox", "172.18.0.2/16")}
			next := netip.MustParseAddr("172.18.0.3")
			for _, tk := range own {
				cid := tk.ContainerID()
				wantEPs[cid] = ep(gw.ID, cid, "gateway_"+cid[:12], netip.PrefixFrom(next, 16).String())
				next = next.Next()
			}
			if diff := cmp.Diff(wantEPs, gw.Containers); diff != "" {
				t.Errorf("mesh_gwbridge's endpoints (-want +got):\n%s", diff)
			}
			if gw.Name != "mesh_gwbridge" || gw.Scope != "local" || gw.Subnet() != "172.18.0.0/16" || len(gw.ID) != 64 {
				t.Errorf("gateway bridge %s %s %s %s", gw.Name, gw.Scope, gw.Subnet(), gw.ID)
			}
			if byPrefix, err := c.client.Network(ctx, gw.ID[:12]); err != nil || byPrefix.Name != "mesh_gwbridge" {
				t.Errorf("inspect by the 12-character ID %s: %s, %v", gw.ID[:12], byPrefix.Name, err)
			}
			for _, name := range []string{"host", "none"} {
				n, err := c.client.Network(ctx, name)
				if err != nil || n.Name != name || len(n.ID) != 64 || n.ID == gw.ID {
					t.Errorf("inspect %s: %s %s, %v", name, n.Name, n.ID, err)
				}
			}
		})
	}

	t.Run("outside a swarm", func(t *testing.T) {
		nets, err := tc.outside.Networks(ctx)
		if err != nil {
			t.Fatalf("network ls: %v", err)
		}
		var names []string
		for _, n := range nets {
			names = append(names, n.Name)
		}
		if !slices.Equal(names, []string{"host", "none"}) {
			t.Errorf("network ls outside a swarm: %v, want host none", names)
		}
		_, err = tc.outside.Network(ctx, "ingress")
		if err == nil || err.Error() != "network ingress not found" || api.StatusCode(err) != http.StatusNotFound {
			t.Errorf("inspect ingress outside a swarm: %v, want network ingress not found (404)", err)
		}
	})
}
