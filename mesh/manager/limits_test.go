package manager

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// TestReservedPortsAreRefused checks that no service may publish a port
// meshd uses: Swarm's defaults always, and each node's own once gossip
// has told the manager (node2 runs with --listen-addr :2400,
// --data-path-port 4800 and gossip on 8000).
func TestReservedPortsAreRefused(t *testing.T) {
	d := newFakeManager(t)
	m2 := member("nnode2", "node2", "192.168.33.11", gossip.StateAlive)
	m2.Port = 8000
	meta, _ := records.DecodeMeta(m2.Meta)
	meta.DataPathPort = 4800
	m2.Meta, _ = records.EncodeMeta(meta)
	d.db.SetMembers(member("nnode1", "node1", "192.168.33.10", gossip.StateAlive), m2,
		member("nnode3", "node3", "192.168.33.12", gossip.StateAlive))
	_, _ = d.store.Update(func(st *State) error {
		n := st.Nodes["nnode2"]
		n.APIAddr = "192.168.33.11:2400"
		st.Nodes["nnode2"] = n
		return nil
	})
	d.syncNodes(time.Now().UTC())
	if n := d.store.Snapshot().Nodes["nnode2"]; n.GossipPort != 8000 || n.DataPathPort != 4800 {
		t.Fatalf("node2 recorded with gossip port %d, data path port %d; want 8000, 4800", n.GossipPort, n.DataPathPort)
	}
	port := func(spec string) api.PortConfig {
		// -p PUBLISHED:80[/udp][,host]
		p := api.PortConfig{TargetPort: 80}
		spec, host := strings.CutSuffix(spec, ",host")
		if host {
			p.PublishMode = api.PublishHost
		}
		spec, udp := strings.CutSuffix(spec, "/udp")
		if udp {
			p.Protocol = api.ProtoUDP
		}
		published, _ := strings.CutSuffix(spec, ":80")
		ap, err := netip.ParseAddrPort("0.0.0.0:" + published)
		if err != nil {
			t.Fatalf("bad spec %q", spec)
		}
		p.PublishedPort = ap.Port()
		return p
	}
	tests := []struct {
		publish string // -p
		want    string // "" accepts
	}{
		{"2377:80", "port 2377/tcp is reserved for meshd (cluster API)"},
		{"7946:80", "port 7946/tcp is reserved for meshd (gossip)"},
		{"7946:80/udp", "port 7946/udp is reserved for meshd (gossip)"},
		{"4789:80/udp", "port 4789/udp is reserved for meshd (VXLAN data path)"},
		{"2377:80,host", "port 2377/tcp is reserved for meshd (cluster API)"},
		{"2400:80", "port 2400/tcp is reserved for meshd (cluster API of node2)"},
		{"8000:80", "port 8000/tcp is reserved for meshd (gossip of node2)"},
		{"8000:80/udp", "port 8000/udp is reserved for meshd (gossip of node2)"},
		{"4800:80/udp", "port 4800/udp is reserved for meshd (VXLAN data path of node2)"},
		// Only the protocol meshd uses is reserved.
		{"4789:80", ""},
		{"2377:80/udp", ""},
		{"4800:80", ""},
	}
	for i, tt := range tests {
		t.Run(tt.publish, func(t *testing.T) {
			before := d.store.Snapshot()
			name := "s" + string(rune('a'+i))
			_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: name, Image: "nginx", Ports: []api.PortConfig{port(tt.publish)}})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || api.StatusCode(err) != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 saying %q", err, tt.want)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Error("a refused service create changed the state")
			}
		})
	}
}

// TestOversizedRequestsChangeNothing checks the field limits through the
// manager: each refusal is one 400 line that repeats at most
// api.MaxQuoted bytes of the input.
func TestOversizedRequestsChangeNothing(t *testing.T) {
	d := newFakeManager(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 100)
	many := func(n int) []string { return strings.Split(strings.Repeat("a,", n-1)+"a", ",") }
	svc := func(edit func(*api.ServiceCreate)) func() error {
		return func() error {
			req := api.ServiceCreate{Name: "s", Image: "whoami"}
			edit(&req)
			_, err := d.CreateService(d.ctx, req)
			return err
		}
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"service name", svc(func(r *api.ServiceCreate) { r.Name = long }), "invalid service name"},
		{"image", svc(func(r *api.ServiceCreate) { r.Image = strings.Repeat(long, 3) }), "invalid image"},
		{"unknown long image", svc(func(r *api.ServiceCreate) { r.Image = long + "\n" }), "Unable to find image"},
		{"arguments", svc(func(r *api.ServiceCreate) { r.Image, r.Args = "", many(65) }), "too many arguments"},
		{"argument bytes", svc(func(r *api.ServiceCreate) { r.Image, r.Args = "", []string{strings.Repeat(long, 41)} }), "arguments too long"},
		{"NUL in an argument", svc(func(r *api.ServiceCreate) { r.Image, r.Args = "", []string{"sh", "a\x00b"} }), "invalid argument"},
		{"aliases", svc(func(r *api.ServiceCreate) {
			r.Networks = []api.NetworkAttachment{{Target: "ovnet", Aliases: many(33)}}
		}), "too many aliases"},
		{"long alias", svc(func(r *api.ServiceCreate) {
			r.Networks = []api.NetworkAttachment{{Target: "ovnet", Aliases: []string{long}}}
		}), "invalid alias"},
		{"alias with a space", svc(func(r *api.ServiceCreate) {
			r.Networks = []api.NetworkAttachment{{Target: "ovnet", Aliases: []string{"a b"}}}
		}), `network ovnet: invalid alias "a b"`},
		{"networks", svc(func(r *api.ServiceCreate) { r.Networks = make([]api.NetworkAttachment, 17) }), "too many networks"},
		{"ports", svc(func(r *api.ServiceCreate) { r.Ports = make([]api.PortConfig, 65) }), "too many published ports"},
		{"protocol", svc(func(r *api.ServiceCreate) {
			r.Ports = []api.PortConfig{{PublishedPort: 80, TargetPort: 80, Protocol: long}}
		}), "invalid protocol"},
		{"unknown network", svc(func(r *api.ServiceCreate) { r.Networks = []api.NetworkAttachment{{Target: "a\nb"}} }),
			`network "a\nb" not found`},
		{"network name", func() error { _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: long}); return err }, "invalid network name"},
		{"subnet", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "n", Subnet: long})
			return err
		}, "invalid subnet"},
		{"driver", func() error {
			_, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "n", Driver: long[:60] + "\n"})
			return err
		}, "unsupported driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			err := tt.do()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || api.StatusCode(err)/100 != 4 {
				t.Fatalf("err = %v, want a 4xx starting %q", err, tt.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, long[:api.MaxQuoted+1]) {
				t.Errorf("message is several lines or repeats too much: %q", msg)
			}
			if !sameJSON(before, d.store.Snapshot()) {
				t.Error("a refused request changed the state")
			}
		})
	}
}

// TestRecordsThatCannotBePublishedAreRefused drives a service to the
// limits of every field at once, with arguments JSON escapes six-fold,
// and checks that its records are measured before they are accepted.
func TestRecordsThatCannotBePublishedAreRefused(t *testing.T) {
	d := newFakeManager(t)
	var nets []api.NetworkAttachment
	aliases := make([]string, api.MaxAliases)
	for i := range aliases {
		aliases[i] = strings.Repeat(string(rune('a'+i%26)), 60) + string(rune('a'+i/26)) + "xx"
	}
	for i := range api.MaxNetworks {
		name := "net" + string(rune('a'+i))
		if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: name}); err != nil {
			t.Fatal(err)
		}
		nets = append(nets, api.NetworkAttachment{Target: name, Aliases: aliases})
	}
	var ports []api.PortConfig
	for i := range api.MaxPorts {
		ports = append(ports, api.PortConfig{PublishedPort: uint16(10000 + i), TargetPort: 80})
	}
	req := api.ServiceCreate{Name: "big", Args: []string{"sh", strings.Repeat("<", api.MaxArgsBytes-2)}, Networks: nets, Ports: ports}
	if err := req.CheckSizes(); err != nil {
		t.Fatalf("the request is within the field limits, yet: %v", err)
	}
	before := d.store.Snapshot()
	_, err := d.CreateService(d.ctx, req)
	if err == nil || !strings.Contains(err.Error(), "service big is") || !strings.Contains(err.Error(), "over the 65536 a table entry carries") {
		t.Fatalf("err = %v, want the service's record refused as too big", err)
	}
	if !sameJSON(before, d.store.Snapshot()) {
		t.Error("a refused service create changed the state")
	}
	req.Args = []string{"sh", "-c", "sleep 1000"}
	if _, err := d.CreateService(d.ctx, req); err != nil {
		t.Errorf("the same service with short arguments: %v", err)
	}
}
