package task

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
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
			if diff := cmp.Diff(tc.want, string(RenderHosts("e8698e425c43", addrs))); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}
