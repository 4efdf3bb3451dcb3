// Package manager is the cluster's manager: it owns the desired state
// (nodes, networks, services, tasks and their allocations) in a
// crash-safe [Store], checks and applies every write, schedules tasks
// (spread over Ready, Active nodes; rescheduled off a node Down for
// Config.RescheduleAfter), folds gossip liveness into its node records,
// and publishes the objects into the gossip tables ([records.Publisher]).
//
// The state functions are pure: each takes a *State under the store's
// lock and either changes it whole or fails and changes nothing, so they
// are tested directly on a Store in a temporary directory, without gossip
// and without a daemon.
package manager
