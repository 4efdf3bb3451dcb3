// Package lb owns the load-balancing side of the mesh: the data plane that
// spreads a service's traffic over its tasks (IPVS where the kernel has it,
// an iptables plane with the same fwmarks where it does not), the ingress
// sandbox, the per-network LB sandboxes and the host chains.
//
// This file set starts with the choice of data plane; the sandboxes and
// rule rendering arrive with the routing mesh.
package lb
