// Package api holds the JSON shapes meshd serves on its unix socket and on
// the cluster port, and a small client for them. meshctl imports only this
// package: what crosses the socket is defined here and nowhere else.
package api

import "time"

// Node status values, as docker node ls prints them.
const (
	StatusReady = "Ready"
	StatusDown  = "Down"
)

// Availability values: a drained node keeps running but gets no new tasks.
const (
	AvailabilityActive = "Active"
	AvailabilityPause  = "Pause"
	AvailabilityDrain  = "Drain"
)

// Roles and the manager status column.
const (
	RoleManager   = "manager"
	RoleWorker    = "worker"
	ManagerLeader = "Leader"
)

// Node is one member of the cluster as the manager records it, with the
// status the answering node sees through gossip.
type Node struct {
	ID            string    `json:"ID"`
	Hostname      string    `json:"Hostname"`
	Role          string    `json:"Role"`
	Status        string    `json:"Status"`
	Availability  string    `json:"Availability"`
	ManagerStatus string    `json:"ManagerStatus,omitempty"`
	Addr          string    `json:"Addr"`
	AddrPrefix    string    `json:"AddrPrefix,omitempty"` // the advertise address with its interface prefix
	DataPlane     string    `json:"DataPlane"`
	Version       string    `json:"Version"`
	CreatedAt     time.Time `json:"CreatedAt"`
	UpdatedAt     time.Time `json:"UpdatedAt"`
	// Self is true on the entry of the node that answered (the `*` in node ls).
	Self bool `json:"Self,omitempty"`
}

// NodeUpdate is the body of a node update; empty fields are left alone.
type NodeUpdate struct {
	Availability string `json:"Availability,omitempty"`
}

// Info describes the answering node and its cluster.
type Info struct {
	NodeID      string `json:"NodeID"`
	NodeName    string `json:"NodeName"`
	NodeAddr    string `json:"NodeAddr"`
	Role        string `json:"Role"`
	ClusterID   string `json:"ClusterID"`
	ManagerAddr string `json:"ManagerAddr"`
	DataPlane   string `json:"DataPlane"`
	Version     string `json:"Version"`
	RunDir      string `json:"RunDir"`
	Nodes       int    `json:"Nodes"`
	NodesReady  int    `json:"NodesReady"`
}

// JoinToken is what `swarm join-token` prints from.
type JoinToken struct {
	Token       string `json:"Token"`
	ManagerAddr string `json:"ManagerAddr"` // host:port of the cluster API
}

// JoinRequest is sent by a joining node to the manager's cluster API.
type JoinRequest struct {
	ID         string `json:"ID"`
	Hostname   string `json:"Hostname"`
	Addr       string `json:"Addr"`
	AddrPrefix string `json:"AddrPrefix,omitempty"`
	GossipPort int    `json:"GossipPort"`
	DataPlane  string `json:"DataPlane"`
	Version    string `json:"Version"`
}

// JoinResponse tells the joiner where to gossip.
type JoinResponse struct {
	ClusterID   string   `json:"ClusterID"`
	ManagerID   string   `json:"ManagerID"`
	ManagerAddr string   `json:"ManagerAddr"`
	GossipAddrs []string `json:"GossipAddrs"` // host:port of live members
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
}

// Namespace is one network namespace file meshd made on a node.
type Namespace struct {
	Name  string `json:"Name"`
	Path  string `json:"Path"`
	Kind  string `json:"Kind"`  // overlay, task, ingress, lb
	Owner string `json:"Owner"` // the network or task it belongs to
}

// LBTable is one load-balancing sandbox's table, ipvsadm-shaped.
type LBTable struct {
	Sandbox   string `json:"Sandbox"`
	Network   string `json:"Network"`
	DataPlane string `json:"DataPlane"`
	Table     string `json:"Table"`
	Error     string `json:"Error,omitempty"`
}
