package mesh

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/meshd/meshd/ipam"
)

// TestChooseGatewaySubnet: the addresses of the bridge meshd made itself
// never push its subnet along, however many an earlier run left on it;
// anyone else's still do.
func TestChooseGatewaySubnet(t *testing.T) {
	on := func(iface string, prefixes ...string) []ifaceAddr {
		var out []ifaceAddr
		for _, p := range prefixes {
			out = append(out, ifaceAddr{iface: iface, prefix: netip.MustParsePrefix(p)})
		}
		return out
	}
	var leaked []string // what 28 restarts left: 172.18 … 172.31, then 192.168.0/20 …
	for i := 18; i <= 31; i++ {
		leaked = append(leaked, netip.AddrFrom4([4]byte{172, byte(i), 0, 1}).String()+"/16")
	}
	for i := 0; i < 14; i++ {
		leaked = append(leaked, netip.AddrFrom4([4]byte{192, 168, byte(i * 16), 1}).String()+"/20")
	}
	underlay := on("eth0", "192.168.33.10/24")
	tests := []struct {
		name  string
		addrs []ifaceAddr
		want  string // "exhausted" for ipam.ErrExhausted
	}{
		{name: "fresh node", addrs: underlay, want: "172.18.0.0/16"},
		{name: "restart", addrs: append(on("mesh_gwbridge", "172.18.0.1/16"), underlay...), want: "172.18.0.0/16"},
		{name: "28 restarts leaked", addrs: append(on("mesh_gwbridge", leaked...), underlay...), want: "172.18.0.0/16"},
		{name: "bridge on the next subnet", addrs: on("mesh_gwbridge", "172.19.0.1/16"), want: "172.18.0.0/16"},
		{name: "docker's gwbridge", addrs: append(on("docker_gwbridge", "172.18.0.1/16"), on("mesh_gwbridge", "172.19.0.1/16")...), want: "172.19.0.0/16"},
		{name: "host address in 172.18", addrs: on("eth1", "172.18.200.3/24"), want: "172.19.0.0/16"},
		{name: "all taken by others", addrs: append(on("eth1", "172.16.0.1/12", "192.168.0.1/16"), on("mesh_gwbridge", "172.18.0.1/16")...), want: "exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseGatewaySubnet(tt.addrs, "mesh_gwbridge")
			if tt.want == "exhausted" {
				if !errors.Is(err, ipam.ErrExhausted) {
					t.Fatalf("got %v, %v, want ErrExhausted", got, err)
				}
				return
			}
			if err != nil || got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("got %v, %v, want %s", got, err, tt.want)
			}
		})
	}
}
