package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// networkProjection is the part of network inspect every node shows the
// same: Containers and Peers are the answering node's view.
const networkProjection = `{{.Id}} {{.Name}} {{.Created}} {{json .IPAM}} {{json .Options}}`

// netnsDir is where a lab node's meshd keeps its namespace files.
const netnsDir = "/var/run/meshd/netns/"

// TestNetworkInspectPerNode follows the tutorials on every node of a
// three-node lab, the workers included: network ls lists the swarm's
// networks and the node's own; network inspect shows the endpoints on
// that node (its tasks, its ingress and load-balancer sandboxes, their
// gateway bridge addresses) with the addresses and MACs the kernel holds
// in those namespaces.
func TestNetworkInspectPerNode(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "2", "--network", "ovnet", "--publish", "8888:80", "whoami")
	ovnetID := strings.TrimSpace(l.must(t, "--node", "node1", "network", "inspect", "ovnet", "--format", "{{.Id}}"))

	type task struct {
		name, id, cid string
		addrs         map[string]string // network name → CIDR
	}
	byNode := map[string][]task{}
	out := l.must(t, "--node", "node1", "service", "ps", "www", "-f", "desired-state=running", "--format",
		`{{.Name}} {{.Node}} {{.Task.ID}} {{range .Networks}}{{.NetworkName}}={{.Addr}} {{end}}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("service ps line %q: want name, node, ID and two networks", line)
		}
		tk := task{name: f[0] + "." + f[2], id: f[2], cid: api.Task{ID: f[2]}.ContainerID(), addrs: map[string]string{}}
		for _, kv := range f[3:] {
			k, v, _ := strings.Cut(kv, "=")
			tk.addrs[k] = v
		}
		byNode[f[1]] = append(byNode[f[1]], tk)
	}
	addrOf := map[string]string{}
	for _, n := range []string{"node1", "node2", "node3"} {
		addrOf[n] = strings.TrimSpace(l.must(t, "--node", "node1", "node", "inspect", n, "--format", "{{.Addr}}"))
	}

	// inNS is what the kernel shows in a namespace of node: its IPv4
	// addresses and its links (with their MACs).
	inNS := func(t *testing.T, node, ns string) string {
		t.Helper()
		addrs, err := l.onNode(node, "nsenter", "--net="+netnsDir+ns, "ip", "-4", "-o", "addr")
		if err != nil {
			t.Fatalf("ip addr in %s on %s: %v\n%s", ns, node, err, addrs)
		}
		links, err := l.onNode(node, "nsenter", "--net="+netnsDir+ns, "ip", "-o", "link")
		if err != nil {
			t.Fatalf("ip link in %s on %s: %v\n%s", ns, node, err, links)
		}
		return addrs + links
	}
	// holds checks that the kernel has an endpoint's address and MAC in ns.
	holds := func(t *testing.T, node, ns string, ep api.EndpointResource) {
		t.Helper()
		k := inNS(t, node, ns)
		if !strings.Contains(k, "inet "+ep.IPv4Address+" ") || !strings.Contains(k, "link/ether "+ep.MacAddress+" ") {
			t.Errorf("%s on %s: the kernel has no %s with %s (%s):\n%s", ns, node, ep.IPv4Address, ep.MacAddress, ep.Name, k)
		}
	}
	containers := func(node, netRef string) (map[string]api.EndpointResource, string, error) {
		out, err := l.on(node, "network", "inspect", "-f", "{{json .Containers}}", netRef)
		if err != nil {
			return nil, out, err
		}
		var eps map[string]api.EndpointResource
		if err := json.Unmarshal([]byte(out), &eps); err != nil {
			return nil, out, fmt.Errorf("decode %q: %w", out, err)
		}
		return eps, out, nil
	}
	// want is the set of keys a node's Containers must have.
	waitKeys := func(t *testing.T, node, netRef string, want []string) map[string]api.EndpointResource {
		t.Helper()
		var eps map[string]api.EndpointResource
		slices.Sort(want)
		eventually(t, 10*time.Second, netRef+"'s endpoints on "+node, func() (bool, string) {
			var out string
			var err error
			eps, out, err = containers(node, netRef)
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, out)
			}
			return slices.Equal(slices.Sorted(maps.Keys(eps)), want), fmt.Sprintf("want %v\n%s", want, out)
		})
		return eps
	}

	for _, node := range []string{"node1", "node2", "node3"} {
		t.Run(node, func(t *testing.T) {
			local := byNode[node]
			t.Logf("%s runs %d task(s) of www", node, len(local))

			out := l.must(t, "--node", node, "network", "ls")
			rows := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) != 4 || len(f[0]) != 12 {
					t.Errorf("network ls row %q: want a 12-character ID, name, driver, scope", line)
					continue
				}
				rows[f[1]] = f[2] + " " + f[3]
			}
			want := map[string]string{"bridge": "bridge local", "ingress": "overlay swarm", "ovnet": "overlay swarm", "mesh_gwbridge": "bridge local",
				"host": "host local", "none": "null local"}
			if !maps.Equal(rows, want) || !strings.HasPrefix(out, "NETWORK ID     NAME ") {
				t.Errorf("network ls on %s, want %v:\n%s", node, want, out)
			}
			// The tutorial's recipe for the ingress namespace's name.
			if q := l.must(t, "--node", node, "network", "ls", "-f", "name=ingress", "-q"); len(strings.Fields(q)) != 1 {
				t.Errorf("network ls -f name=ingress -q on %s gives %q, want one ID", node, q)
			}

			keys := []string{api.IngressSandboxKey}
			for _, tk := range local {
				keys = append(keys, tk.cid)
			}
			eps := waitKeys(t, node, "ingress", keys)
			sbox := eps[api.IngressSandboxKey]
			if sbox.Name != api.IngressEndpoint {
				t.Errorf("ingress-sbox on %s is named %q, want ingress-endpoint", node, sbox.Name)
			}
			holds(t, node, "ingress_sbox", sbox)
			for _, tk := range local {
				ep := eps[tk.cid]
				if ep.Name != tk.name || ep.IPv4Address != tk.addrs["ingress"] || len(ep.EndpointID) != 64 {
					t.Errorf("%s on ingress on %s: %+v, want %s at %s", tk.cid[:12], node, ep, tk.name, tk.addrs["ingress"])
				}
				holds(t, node, tk.cid[:12], ep)
			}

			keys = nil
			for _, tk := range local {
				keys = append(keys, tk.cid)
			}
			if len(local) > 0 {
				keys = append(keys, "lb-ovnet")
			}
			eps = waitKeys(t, node, "ovnet", keys)
			if len(local) > 0 {
				lb := eps["lb-ovnet"]
				if lb.Name != "ovnet-endpoint" {
					t.Errorf("lb-ovnet on %s is named %q, want ovnet-endpoint", node, lb.Name)
				}
				holds(t, node, "lb_"+ovnetID[:9], lb)
				if m := l.must(t, "--node", node, "network", "inspect", "-f", "{{ .Containers }}", "ovnet"); !strings.Contains(m, "lb-ovnet:{ovnet-endpoint ") {
					t.Errorf("network inspect -f '{{ .Containers }}' ovnet on %s:\n%s", node, m)
				}
			}
			for _, tk := range local {
				if ep := eps[tk.cid]; ep.Name != tk.name || ep.IPv4Address != tk.addrs["ovnet"] {
					t.Errorf("%s on ovnet on %s: %+v, want %s at %s", tk.cid[:12], node, ep, tk.name, tk.addrs["ovnet"])
				}
				holds(t, node, tk.cid[:12], eps[tk.cid])
			}
			var peers []api.PeerInfo
			if err := json.Unmarshal([]byte(l.must(t, "--node", node, "network", "inspect", "-f", "{{json .Peers}}", "ovnet")), &peers); err != nil {
				t.Fatal(err)
			}
			for n, tks := range byNode {
				if len(tks) > 0 && !slices.ContainsFunc(peers, func(p api.PeerInfo) bool { return p.IP == addrOf[n] }) {
					t.Errorf("ovnet's peers on %s %v miss %s (%s), which runs a task", node, peers, n, addrOf[n])
				}
			}

			var gws []api.NetworkResource
			if err := json.Unmarshal([]byte(l.must(t, "--node", node, "network", "inspect", "mesh_gwbridge")), &gws); err != nil || len(gws) != 1 {
				t.Fatalf("network inspect mesh_gwbridge on %s: %v", node, err)
			}
			gw := gws[0]
			want1 := api.EndpointResource{Name: "gateway_ingress-sbox", EndpointID: api.EndpointID(gw.ID, api.IngressSandboxKey),
				MacAddress: "02:42:ac:12:00:02", IPv4Address: "172.18.0.2/16"}
			if got := gw.Containers[api.IngressSandboxKey]; got != want1 {
				t.Errorf("ingress-sbox on mesh_gwbridge on %s: %+v, want %+v", node, got, want1)
			}
			holds(t, node, "ingress_sbox", want1)
			if len(gw.Containers) != 1+len(local) {
				t.Errorf("mesh_gwbridge on %s has %d endpoints, want the ingress sandbox and %d task(s): %v", node, len(gw.Containers), len(local), gw.Containers)
			}
			for _, tk := range local {
				ep, ok := gw.Containers[tk.cid]
				if !ok || ep.Name != "gateway_"+tk.cid[:12] {
					t.Errorf("%s's gateway endpoint on %s: %+v", tk.name, node, ep)
					continue
				}
				holds(t, node, tk.cid[:12], ep)
			}
			if m := l.must(t, "--node", node, "network", "inspect", "-f", "{{ .Containers }}", "docker_gwbridge"); !strings.Contains(m, "ingress-sbox:{gateway_ingress-sbox ") {
				t.Errorf("network inspect -f '{{ .Containers }}' docker_gwbridge on %s:\n%s", node, m)
			}
			for _, name := range []string{"host", "none"} {
				if got := l.must(t, "--node", node, "network", "inspect", "-f", "{{.Name}} {{.Scope}} {{len .Id}}", name); got != name+" local 64\n" {
					t.Errorf("network inspect %s on %s: %q", name, node, got)
				}
			}
		})
	}

	// The cluster's part of the network is the same on every node.
	var views []string
	for _, node := range []string{"node1", "node2", "node3"} {
		views = append(views, l.must(t, "--node", node, "network", "inspect", "-f", networkProjection, "ovnet", "ingress"))
	}
	if views[0] != views[1] || views[1] != views[2] {
		t.Errorf("the networks differ between nodes:\n%s", strings.Join(views, "---\n"))
	}
}
