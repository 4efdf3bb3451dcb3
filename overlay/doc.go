// Package overlay builds the per-node half of Swarm's overlay networks:
// one namespace per network with a bridge and a VXLAN device, a veth per
// local endpoint, and static neighbour and FDB entries for every remote
// endpoint.
//
// # Layout
//
// For a network with ID netid, on a node whose underlay address is
// 192.168.33.10:
//
//	host netns (Config.HostNS)  the underlay, 192.168.33.10; the VXLAN UDP socket, :4789
//	NSDir/1-<netid[:10]>        br0          bridge, 10.0.0.1/24, mtu 1450
//	                            vxlan0       port of br0; vxlan id 4097 local 192.168.33.10
//	                                         dstport 4789 nolearning proxy; mtu 1450
//	                            veth1a2b3c4  port of br0, mtu 1450, peer of eth0 below
//	task sandbox (Endpoint)     eth0         10.0.0.2/24, 02:42:0a:00:00:02, mtu 1450
//
// vxlan0 is created in the host namespace under a temporary name
// (vx-<vni hex>-<rand>), moved into the overlay namespace and renamed, as
// Swarm does: the kernel keeps a VXLAN device's UDP socket in the
// namespace it was created in, and that is where the underlay is. A crash
// between creation and move leaves a vx-* device holding the VNI and the
// port, and the next creation fails with "file exists" (a known Swarm
// failure); [Overlay.Sweep] removes such devices and the overlay
// namespaces of networks the node no longer has, and
// [Overlay.EnsureNetwork] removes a VXLAN device other than vxlan0 found
// in the overlay namespace (a crash between move and rename).
// [Overlay.RemoveNetwork] deletes vxlan0 before the namespace, because the
// kernel frees a namespace's devices asynchronously and the VNI would stay
// taken for a while.
//
// The veth of an endpoint is created from inside the overlay namespace
// with its peer placed straight into the sandbox under its final name
// (eth0, eth1, …), so it never appears in the host namespace, where its
// name could clash with anything.
//
// # MTU
//
// Every device of the overlay gets the underlay MTU minus 50 (1450 on a
// 1500 underlay): the VXLAN encapsulation adds an inner Ethernet header
// (14), an outer IPv4 header (20), UDP (8) and the VXLAN header (8), and
// the outer packet must fit the underlay unfragmented.
//
// # Why static FDB and ARP entries
//
// Every node already knows every remote endpoint's IP, MAC and node from
// the gossiped peer table, so it programs them: a permanent neighbour
// entry IP → MAC on vxlan0, a permanent FDB entry MAC → remote VTEP on
// vxlan0, and a static entry of br0 sending the MAC to its vxlan0 port
// ("bridge fdb show dev vxlan0" lists "MAC master br0 static" above "MAC
// dst VTEP self permanent"). Without br0's entry, a frame from a local
// task to a remote one is an unknown destination for br0, which copies
// it to every port: each other local task's namespace receives and drops
// a copy of every packet leaving the node, so the cost of a packet grew
// with the tasks on the node, and their tcpdump showed others' traffic.
// A local endpoint's MAC never gets br0's entry, even from a stale peer
// (an address freed on another node and given here): br0 learns it on
// the endpoint's veth.
// vxlan0 answers ARP requests from its neighbour table itself (its
// "proxy" flag: this is the "proxy ARP" of the design notes; br0 has no
// proxy_arp), so no broadcast ever crosses the underlay, and there are no
// flood entries. Learning is off: a learned entry is only as good as
// the last packet seen, can point at a node that has gone, and (moby
// #52661) a learned or stale entry once blocked re-adding the permanent
// one after a flap; every entry here is written with replace semantics so
// nothing already there can block it. The alternative, L2MISS/L3MISS
// netlink notifications answered on demand (flannel's first VXLAN
// backend; libnetwork still turns them on), makes the first packets to a
// peer wait for a round trip through userspace and stops working while
// the daemon restarts. flannel's history comment records the same move
// to static entries: with no netlink listener there is nothing to time
// out.
//
// Table size scales with the remote endpoints of one network: two entries
// each on that network's vxlan0. A thousand remote tasks are two thousand
// kernel entries, which the neighbour table holds easily (Swarm raises
// gc_thresh for the host's table; these are per-namespace and permanent,
// so garbage collection never evicts them).
//
// # Reconciling
//
// Every method computes what the kernel should have (pure functions),
// lists what it has, and changes only the difference: a second call
// changes nothing, and a device or entry deleted or changed by hand is
// repaired by the next call. A device that cannot be changed in place (a
// VXLAN device with another VNI or port, a link of the wrong kind) is
// removed and recreated, and the reason ("vni: 4097 vs 4096") logged.
// Peers are added ARP then FDB and removed FDB then ARP, and a peer whose
// FDB entry fails loses its ARP entry again, so none is ever half there.
//
// # Gateway bridge
//
// Overlay networks reach only each other. A task's way out, and the
// ingress sandbox's way in from the node, is [GatewayBridge]: a bridge in
// the node's namespace (Swarm's docker_gwbridge, here mesh_gwbridge) with
// a veth into each sandbox holding the default route. It lives here
// because it is devices on the same kernel seam; the rules that use it
// (egress masquerade, DNAT into the ingress sandbox) are lb's, and match
// it by the name the daemon gives both.
//
// The kernel sits behind [Kernel] (namespaces, links and their addresses,
// neighbours, and the stack: default route and sysctls); the real
// implementation opens a netlink handle in the namespace each call names,
// and [FakeKernel] is an in-memory model for tests elsewhere.
package overlay
