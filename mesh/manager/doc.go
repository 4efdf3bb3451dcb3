// Package manager is the cluster's managers: 1, 3 or 5 replicas of the
// cluster's state (identity, tokens and secrets, nodes and their roles,
// networks, services, tasks and their allocations), kept in step by raft
// (hashicorp/raft, a raft-boltdb log, snapshots of the state as JSON).
//
// A write is checked and computed on the leader by a pure function of the
// state; the [Store] logs the change as a diff against the version it was
// computed from, and every manager applies the same diffs in the same
// order, so a new leader continues with the same IDs, VIPs, fwmarks and
// task IPs. Without a quorum a write is refused with docker's "does not
// have a leader"; nothing else changes, and the data plane, which serves
// the published state, does not notice.
//
// A write is also refused, before anything is logged, when its request is
// over mesh/api's field limits, when a record it makes would not fit a
// gossip entry (records.CheckSize), or when a service would publish a port
// meshd uses on the nodes (2377/tcp, 7946/tcp and udp, 4789/udp, and each
// node's own, which gossip tells the manager).
//
// While it leads, a manager schedules tasks (spread over Ready, Active
// nodes; rescheduled off a node Down for Config.RescheduleAfter), folds
// gossip liveness into its node records, makes the raft voters follow the
// manager roles (promote, demote) and publishes the objects into the
// gossip tables ([records.Publisher]).
//
// A task's process runs once, as a container does. When its node reports
// it complete or failed, the leader shuts it down (its report kept in the
// state, its addresses released) and the service's restart policy says
// whether and when a new task takes its slot; each slot keeps at most 5
// tasks, the ended ones as its history (see restart.go).
//
// A service is replicated (Replicas slots, numbered from 1, tasks named
// www.1) or global (one task on every Ready, Active node that satisfies
// its constraints). A global task has slot 0 and its node stands for the
// slot: it is named SERVICE.NODEID, as docker service ps names it (the
// agent's endpoint name, SERVICE.NODEID.TASKID, is docker's container
// name), and its restart history is kept per node. Placement constraints
// are swarmkit's expressions on node.id, node.hostname, node.role and
// node.labels.KEY; a slot no node satisfies waits, and a node whose labels
// or role stop satisfying a task's constraints loses it as a drained node
// does (see global.go, constraints.go).
//
// A service update changes the spec at once, keeping the one it replaced
// (PreviousSpec, which a rollback swaps back in), and the leader replaces
// the tasks whose spec changed (image, arguments, environment, networks,
// --force) a batch at a time at each sync, as Swarm's updater does: a
// batch's new tasks must run and be programmed by every node that sends
// to them before the next batch starts (then the update delay), an old
// task shut down drains first on its node, and a new task that fails does
// the failure action (pause, continue, rollback). The progress is in the
// state (the service's UpdateStatus, the batch under way in Rollouts), so
// a new leader continues an update (see update.go).
//
// Raft runs on the cluster port beside the HTTP API (internal/portmux):
// each connection is TLS, and both ends prove they know the accepting
// manager's node secret over the session's exported keying material.
//
// The state functions are pure: each takes a *State and either changes it
// whole or fails and changes nothing, so they are tested directly on an
// in-memory store, without gossip and without a daemon.
package manager
