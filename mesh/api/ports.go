package api

// The ports meshd uses on a node unless told otherwise, as Swarm's; the
// cluster API's is DefaultAPIPort (2377/tcp). A node's own, when it was
// told otherwise, are in its [Node] record. No service may publish any of
// them: the routing mesh would take the node's own traffic.
const (
	DefaultGossipPort   = 7946 // memberlist, tcp and udp
	DefaultDataPathPort = 4789 // VXLAN, udp
)
