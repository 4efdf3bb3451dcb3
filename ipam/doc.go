// Package ipam allocates what overlay networks need: subnets, gateways and
// VXLAN network identifiers (VNIs) for the networks, addresses for tasks,
// service VIPs and load balancers on them, and on each node the subnet and
// addresses of the mesh_gwbridge bridge. It is pure: no kernel, no I/O, no
// goroutines. The manager owns one [Allocator], keeps it in its crash-safe
// state file, and applies every change to a copy ([Allocator.Clone]) that
// it commits only when the file is written; hence a failed call changes
// nothing, and the whole state round-trips through encoding/json.
//
// # Addresses: serial allocation
//
// Inside a network, automatic allocation hands out the next free address
// after the last one it handed out, wrapping around at the end of the range
// (the --ip-range, else the subnet), as Docker's bitmask allocator does in
// serial mode. An address that was just released is thus not handed out
// again until the range wraps. That matters in a cluster: a released task
// IP or VIP still sits for a while in other nodes' neighbour and FDB
// entries, IPVS tables, conntrack and DNS caches until gossip and the
// reconcilers catch up; taking the lowest free address instead would give
// it to a new task straight away and send it the old one's traffic. The
// network and broadcast addresses, the gateway and the --aux-address
// addresses are never handed out. An explicitly requested address (--ip)
// may be anywhere in the subnet and does not move the cursor.
//
// The cursor and the allocated addresses are kept as a number and a set,
// not as a bitmap: memory grows with what is allocated, not with the
// subnet, so a /8 costs nothing up front, and the state file lists
// addresses a person can read. Finding the next free address walks only
// past allocated or reserved ones, so its cost is bounded by the set too.
//
// # Subnets: /24s in order
//
// A network created without --subnet takes the first /24 of 10.0.0.0/8
// (Config.OverlayPool and OverlayPrefixLen) that overlaps no other network
// and none of the node's own prefixes the caller passes: 10.0.0.0/24 first,
// as in the tutorials, then 10.0.1.0/24 and so on. The lowest free one is
// taken, so a removed network's subnet comes back; unlike an address, a
// subnet is only freed once the manager has removed every endpoint of it,
// and a new network gets a new ID, so nodes build it in new namespaces.
// A subnet given with --subnet must be canonical IPv4 (10.20.0.0/24, not
// 10.20.0.5/24) between /8 and /29 and overlap nothing either.
//
// The ingress network is fixed: 10.255.0.0/16, gateway 10.255.0.1, VNI
// 4096, the values the tutorials show (newer Swarm takes a /24 from the
// pool instead). It lies inside 10.0.0.0/8, and carving skips it like any
// other network; the manager adds it when it creates the cluster, before
// any user network could take part of its range.
//
// # VNIs: lowest free, reused
//
// User networks get the lowest VNI from 4097 (Config.FirstVNI) that no
// network holds; 4096 stays the ingress network's. A removed network's VNI
// is reused by the next network. VNIs only name a network's VXLAN segment
// among nodes that all learn of the removal through the same tables; what
// reuse asks of a node is that it delete the old network's vxlan device
// before it creates the new one (both sockets live in the host namespace,
// and the kernel refuses a second device with the same VNI and port). The
// node agent compares a device's VNI with the desired one and recreates it
// when they differ, which it must do anyway to repair drift. Counting up for
// ever would not run out in practice either, but a long-lived lab's numbers
// would drift away from the tutorials'; lowest-free keeps them small and
// predictable.
//
// # The local bridge and MAC addresses
//
// [GatewayBridgePool] picks a node's mesh_gwbridge subnet, 172.18.0.0/16
// unless that is taken, and [NewPool] hands out its addresses: .1 is the
// bridge, the ingress sandbox reserves 172.18.0.2, tasks take the rest.
// [MAC] derives an endpoint's MAC from its IPv4 address, 02:42 and the four
// address bytes, as Docker does: a node can then program a remote
// endpoint's neighbour and FDB entries from its IP alone, and two
// endpoints can only share a MAC if they share an IP.
package ipam
