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
// tasks (ps, exec) and their containers (inspect) and output (logs),
// namespaces, load balancers. service logs is a manager's read of files
// it does not hold: the nodes push their tasks' output to it (logs.go).
//
// On the cluster port every request is signed ([Keys]): a join with a
// join token, whose role (worker or manager) it gets; a write another
// manager forwards with this node's secret. The leader's api.StatusError
// crosses the wire as it is, so a refusal reads the same on any manager.
//
// # Limits
//
// A request body is read whole before any work is done on it, and refused
// with a 413 over its cap: 1 MiB on the cluster port, 4 MiB on the unix
// socket ([LimitBody]); a node's log push alone is a stream, read line by
// line, each line bounded (api.MaxLogRecord) and the lines of one request
// rate-limited. A body is one JSON value, decoded strictly:
// unknown fields, and anything after the value but white space, are
// refused with a 400, and each request type is held to mesh/api's field
// limits (names, aliases, arguments, ports, networks), which keep every
// record replicable. Errors repeat at most 64 bytes of the caller's input
// (api.Quote), on one line. The daemon gives both servers read, write and
// idle timeouts; swarm init, join and leave, which may wait for a manager
// far longer, lift their write deadline, and so does a task's output,
// which is streamed as it is (logs --follow lasts as long as the task), and
// a capture, which ends at its count or duration (api.MaxCaptureCount and
// api.MaxCaptureDuration at most) or when its client goes, four at once.
// Refused cluster requests are logged at most once a minute per remote
// host, with a count of the rest.
package apiserver
