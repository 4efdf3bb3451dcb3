// Package apiserver serves meshd's two HTTP APIs from one route table:
// the root-only unix socket that meshctl talks to, and the cluster port
// (2377) on managers.
//
// What a request may do depends on the node's place in the cluster, which
// changes at run time (swarm init, join, leave, promote, demote), so it
// is asked of [Node.Control] at every request: a manager gets the
// cluster's [Writes] (the leader's manager itself, or a [Forwarder] to
// the leader from another manager); a worker refuses cluster reads and
// writes with docker's words (api.ErrNotManager), a node in no cluster
// with api.ErrNotInSwarm. Any node answers for itself: info, its own
// tasks (ps, exec), namespaces, load balancers.
//
// On the cluster port every request is signed ([Keys]): a join with a
// join token, whose role (worker or manager) it gets; a write another
// manager forwards with this node's secret. The leader's api.StatusError
// crosses the wire as it is, so a refusal reads the same on any manager.
package apiserver
