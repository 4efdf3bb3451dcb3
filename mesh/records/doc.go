// Package records is the cluster's data as the gossip tables carry it:
// every table name, every record type, and the only code that encodes or
// decodes them. The leading manager publishes the desired state (nodes,
// networks, services, tasks) and a head certifying it ([Publisher]); each
// node owns its entries in task_status, overlay_peer_table and
// endpoint_table. Readers get typed values with netip fields; the JSON
// shapes on the wire are private to this package.
//
// The desired state a node serves is [Desired]'s: the tables' when they
// hash to their head's digest, otherwise the last state verified, kept on
// disk. Gossip drops a dead or restarted manager's entries and shows a
// republish in pieces; neither may stop or drain a task still desired.
//
// It also holds the read model every node serves from those tables: the
// objects ([Objects]), the node list as this node sees it ([NodeView]) and
// the resolution of a reference to an object ([Resolve], [FindNode]).
package records
