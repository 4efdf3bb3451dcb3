package records

import (
	"context"

	"github.com/meshd/meshd/gossip"
)

// The gossip tables, as the design notes name them. The leading manager
// owns the first five (the desired state and its head); each node owns its
// entries in the rest. The names MUST NOT change: nodes of one cluster
// must agree on them.
const (
	TableNodes       = "nodes" // cluster scope, by node ID
	TableNetworks    = "networks"
	TableServices    = "services"
	TableTasks       = "tasks"
	TableCluster     = "cluster" // one entry, HeadKey: the [Head] of the four above
	TableTaskStatus  = "task_status"
	TableOverlayPeer = "overlay_peer_table" // per network: (IP, MAC, VTEP) of each endpoint
	TableEndpoints   = "endpoint_table"     // per network: each running task's service, VIP, IP, ports, aliases
	TableProgrammed  = "programmed"         // per service, by node: the tasks its balancers and DNS send to
	TableLogSubs     = "log_subscriptions"  // cluster scope, by subscription ID: a manager asking nodes for task output
)

// AllNetworks is the scope that lists a per-network table across every
// network.
const AllNetworks = gossip.AllScopes

// DB is what this package asks of the gossip store; *gossip.DB is the real
// one.
type DB interface {
	// LocalName is this node's name: the owner of what it writes.
	LocalName() string
	Put(table, scope, key string, value []byte) error
	Delete(table, scope, key string) error
	Get(table, scope, key string) (gossip.Entry, bool)
	// List returns a table's live entries in scope sorted by key, as
	// gossip.DB.List does: the desired state's digest is taken in that
	// order.
	List(table, scope string) []gossip.Entry
	Members() []gossip.Member
	Watch(ctx context.Context, table string) <-chan gossip.Event
	// SyncWith exchanges full state with the member now (anti-entropy
	// on demand, see gossip.DB.SyncWith).
	SyncWith(member string) error
	// Generation counts the changes to a table's live entries: the same
	// count, the same entries (see gossip.DB.Generation).
	Generation(table string) uint64
}

var _ DB = (*gossip.DB)(nil)

// HeadKey is the key of the one entry of TableCluster.
const HeadKey = "head"

// Reachable says whether a member counts as Ready: a suspect is still
// Ready until memberlist declares it dead, as docker shows it.
func Reachable(s gossip.MemberState) bool {
	return s == gossip.StateAlive || s == gossip.StateSuspect
}
