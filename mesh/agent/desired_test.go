package agent

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// The node's host rules forward the ingress ports to the ingress
// sandbox, and a host-mode task's ports and a container's (on a swarm
// network) to the task's address on mesh_gwbridge, on its node only.
func TestHostRulesPorts(t *testing.T) {
	st := records.Objects{Services: map[string]api.Service{
		"s1": {ID: "s1", Name: "www", Endpoint: api.Endpoint{Ports: []api.PortConfig{
			{Protocol: api.ProtoTCP, PublishedPort: 8888, TargetPort: 80, PublishMode: api.PublishIngress}}}},
		"s2": {ID: "s2", Name: "direct", Endpoint: api.Endpoint{Ports: []api.PortConfig{
			{Protocol: api.ProtoTCP, PublishedPort: 8081, TargetPort: 80, PublishMode: api.PublishHost}}}},
	}}
	local := map[string]api.Task{
		"t1": {ID: "t1", ServiceID: "s2"},
		"c1": {ID: "c1", Standalone: &api.Standalone{Name: "web", Ports: []api.ContainerPort{
			{Proto: api.ProtoTCP, Port: 80, HostPort: 32768}, {Proto: api.ProtoUDP, Port: 53, HostPort: 5353}}}},
		"c2": {ID: "c2", Standalone: &api.Standalone{Name: "inside", Ports: []api.ContainerPort{
			{Proto: api.ProtoTCP, Port: 80, HostPort: 9000}}}}, // internal networks only: no gateway link
	}
	gw := map[string]netip.Addr{"t1": netip.MustParseAddr("172.18.0.3"), "c1": netip.MustParseAddr("172.18.0.4")}
	got := hostRules(st, netip.MustParseAddr("172.18.0.2"), netip.MustParsePrefix("172.18.0.0/16"), local, gw)
	want := lb.HostRules{IngressGW: netip.MustParseAddr("172.18.0.2"), Egress: netip.MustParsePrefix("172.18.0.0/16"),
		Published: []lb.Port{{Proto: api.ProtoTCP, Published: 8888, Target: 80}},
		HostPorts: []lb.HostPort{
			{Port: lb.Port{Proto: api.ProtoUDP, Published: 5353, Target: 53}, Dest: netip.MustParseAddr("172.18.0.4")},
			{Port: lb.Port{Proto: api.ProtoTCP, Published: 8081, Target: 80}, Dest: netip.MustParseAddr("172.18.0.3")},
			{Port: lb.Port{Proto: api.ProtoTCP, Published: 32768, Target: 80}, Dest: netip.MustParseAddr("172.18.0.4")},
		}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("hostRules (-want +got):\n%s", diff)
	}
}
