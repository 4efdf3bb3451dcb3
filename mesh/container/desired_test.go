package container

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
)

// The slides' prod network: two named containers sharing the alias es,
// and an anonymous one with the alias hello; and the default bridge,
// whose containers have no names.
func slidesState() (state, map[string]bool) {
	prod := &network{ID: "prodid", Name: "prod", Bridge: "br-prodid", IPAM: ipam.Network{Subnet: netip.MustParsePrefix("172.21.0.0/16")}}
	def := &network{ID: "defid", Name: "bridge", Bridge: "mesh0", Default: true, IPAM: ipam.Network{Subnet: netip.MustParsePrefix("172.17.0.0/16")}}
	ctr := func(id, name string, named bool, net *network, addr string, aliases ...string) *container {
		return &container{Named: named, Run: true, Task: api.Task{ID: id, Standalone: &api.Standalone{Name: name},
			Networks: []api.TaskNetwork{{NetworkID: net.ID, NetworkName: net.Name, Addr: addr, Aliases: aliases}}}}
	}
	st := state{Networks: []*network{def, prod}, Containers: []*container{
		ctr("t1", "prod-es-1", true, prod, "172.21.0.2/16", "es"),
		ctr("t2", "prod-es-2", true, prod, "172.21.0.3/16", "es"),
		ctr("t3", "jolly_cerf", false, prod, "172.21.0.4/16", "hello"),
		ctr("t4", "quiet_kahn", false, def, "172.17.0.2/16"),
		ctr("t5", "stopped", true, prod, "172.21.0.9/16", "es"),
	}}
	return st, map[string]bool{"t1": true, "t2": true, "t3": true, "t4": true}
}

func TestDNSEndpoints(t *testing.T) {
	st, running := slidesState()
	short := func(id string) string { return api.Task{ID: id}.ContainerID()[:12] }
	ip := netip.MustParseAddr
	want := []dns.Endpoint{
		{NetworkID: "prodid", Network: "prod", TaskName: "prod-es-1", IP: ip("172.21.0.2"), TaskAliases: []string{"es", short("t1")}},
		{NetworkID: "prodid", Network: "prod", TaskName: "prod-es-2", IP: ip("172.21.0.3"), TaskAliases: []string{"es", short("t2")}},
		{NetworkID: "prodid", Network: "prod", IP: ip("172.21.0.4"), TaskAliases: []string{"hello", "jolly_cerf", short("t3")}},
	}
	if diff := cmp.Diff(want, dnsEndpoints(st, running), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("endpoints (-want +got), none on the default bridge, none stopped:\n%s", diff)
	}
	if got := querier(st, st.Containers[3]); len(got.Networks) != 0 {
		t.Errorf("a default-bridge container sees %v, want no network", got.Networks)
	}
	if got := querier(st, st.Containers[0]); !cmp.Equal(got.Networks, []string{"prodid"}) {
		t.Errorf("prod-es-1 sees %v, want prod", got.Networks)
	}
}
