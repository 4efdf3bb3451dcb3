package lb

import (
	"fmt"
	"net/netip"
	"strings"
)

// GatewayBridgeName is the host bridge that gives tasks their way out and
// the ingress sandbox its way in (Swarm's docker_gwbridge).
const GatewayBridgeName = "mesh_gwbridge"

// postroutingChain holds the gateway bridge's masquerade, jumped to from
// nat POSTROUTING.
const postroutingChain = "MESH-POSTROUTING"

// renderMasquerade is the nat table for egress from the gateway bridge:
// traffic from its subnet leaving by another interface is masqueraded, as
// Swarm's "POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE".
func renderMasquerade(subnet netip.Prefix) []byte {
	var b strings.Builder
	b.WriteString("*nat\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", postroutingChain)
	fmt.Fprintf(&b, "-A %s -s %s ! -o %s -j MASQUERADE\n", postroutingChain, subnet.Masked(), GatewayBridgeName)
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}
