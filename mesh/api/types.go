// Package api holds the JSON shapes meshd serves on its unix socket and on
// the cluster port, and a small client for them. meshctl imports only this
// package: what crosses the socket is defined here and nowhere else.
package api

import (
	"time"
)

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
	RoleManager        = "manager"
	RoleWorker         = "worker"
	ManagerLeader      = "Leader"
	ManagerReachable   = "Reachable"
	ManagerUnreachable = "Unreachable"
)

// Node is one member of the cluster as the manager records it, with the
// status the answering node sees through gossip.
type Node struct {
	ID            string `json:"ID"`
	Hostname      string `json:"Hostname"`
	Role          string `json:"Role"`
	Status        string `json:"Status"`
	Availability  string `json:"Availability"`
	ManagerStatus string `json:"ManagerStatus,omitempty"`
	Addr          string `json:"Addr"`
	AddrPrefix    string `json:"AddrPrefix,omitempty"` // the advertise address with its interface prefix
	// APIAddr is where the node serves the cluster API (and raft) when it
	// is a manager: host:port.
	APIAddr string `json:"APIAddr,omitempty"`
	// GossipPort (tcp and udp) and DataPathPort (VXLAN, udp) are the
	// node's own as it gossips them; 0 before it has. No service may
	// publish them.
	GossipPort   int    `json:"GossipPort,omitempty"`
	DataPathPort int    `json:"DataPathPort,omitempty"`
	DataPlane    string `json:"DataPlane"`
	Version      string `json:"Version"`
	// Labels are the node's own (node update --label-add), which
	// placement constraints node.labels.KEY match.
	Labels    map[string]string `json:"Labels,omitempty"`
	CreatedAt time.Time         `json:"CreatedAt"`
	UpdatedAt time.Time         `json:"UpdatedAt"`
	// Self is true on the entry of the node that answered (the `*` in node ls).
	Self bool `json:"Self,omitempty"`
}

// NodeUpdate is the body of a node update; empty fields are left alone.
// Role is how node promote and demote are sent.
type NodeUpdate struct {
	Availability string `json:"Availability,omitempty"`
	Role         string `json:"Role,omitempty"`
	// LabelAdd sets labels (KEY=VALUE's parts); LabelRm removes keys.
	LabelAdd map[string]string `json:"LabelAdd,omitempty"`
	LabelRm  []string          `json:"LabelRm,omitempty"`
}

// Info describes the answering node and its cluster.
type Info struct {
	NodeID   string `json:"NodeID"`
	NodeName string `json:"NodeName"`
	NodeAddr string `json:"NodeAddr"`
	// LocalNodeState is "inactive" before swarm init or join, "active"
	// after, as docker info's "Swarm:" line.
	LocalNodeState string `json:"LocalNodeState"`
	Role           string `json:"Role"`
	ClusterID      string `json:"ClusterID"`
	// ManagerAddr is the cluster API of a manager this node knows (the
	// leader when known).
	ManagerAddr string `json:"ManagerAddr"`
	// Managers lists the managers' cluster API addresses (host:port) as
	// this node last knew them.
	Managers []string `json:"Managers,omitempty"`
	// ControlAvailable is true on a manager: cluster reads and writes work
	// here.
	ControlAvailable bool `json:"ControlAvailable"`
	// Leader is the leader's node name, empty when there is none (quorum
	// lost) or this node is not a manager.
	Leader string `json:"Leader,omitempty"`
	// ManagerReachable says whether this node hears a manager through
	// gossip; false means it serves the last desired state it knew.
	ManagerReachable bool   `json:"ManagerReachable"`
	DataPlane        string `json:"DataPlane"`
	Version          string `json:"Version"`
	RunDir           string `json:"RunDir"`
	Nodes            int    `json:"Nodes"`
	NodesReady       int    `json:"NodesReady"`
	// Warning explains a degraded state in one line ("manager
	// unreachable: serving the last desired state", "no leader: …").
	Warning string `json:"Warning,omitempty"`
}

// JoinToken is what `swarm join-token` prints from.
type JoinToken struct {
	Role        string `json:"Role"` // worker or manager
	Token       string `json:"Token"`
	ManagerAddr string `json:"ManagerAddr"` // host:port of the cluster API
}

// SwarmInit is the body of swarm init.
type SwarmInit struct {
	// AdvertiseAddr is the address other nodes reach this one at; empty
	// keeps meshd's --advertise-addr. A port, if given, must be the
	// cluster API's.
	AdvertiseAddr string `json:"AdvertiseAddr,omitempty"`
	// ForceNewCluster is not supported yet; refused when set.
	ForceNewCluster bool `json:"ForceNewCluster,omitempty"`
	// CertExpiry is the node certificates' lifetime; zero means 90 days.
	CertExpiry time.Duration `json:"CertExpiry,omitempty"`
}

// SwarmInitResponse is what swarm init prints from.
type SwarmInitResponse struct {
	NodeID      string `json:"NodeID"`
	ClusterID   string `json:"ClusterID"`
	WorkerToken string `json:"WorkerToken"`
	ManagerAddr string `json:"ManagerAddr"` // host:port of the cluster API
}

// SwarmJoin is the body of swarm join.
type SwarmJoin struct {
	RemoteAddr    string `json:"RemoteAddr"` // a manager's host[:port]
	Token         string `json:"Token"`
	AdvertiseAddr string `json:"AdvertiseAddr,omitempty"`
}

// SwarmJoinResponse is what swarm join prints from.
type SwarmJoinResponse struct {
	NodeID string `json:"NodeID"`
	Role   string `json:"Role"` // the role the token gave
}

// SwarmCA is the cluster's root CA as swarm ca prints it.
type SwarmCA struct {
	Certs    [][]byte `json:"Certs"`    // DER, the signing root first
	Rotating bool     `json:"Rotating"` // an old root is still trusted while nodes renew
}

// SwarmLeave is the body of swarm leave.
type SwarmLeave struct {
	Force bool `json:"Force,omitempty"`
}

// JoinRequest is sent by a joining node to a manager's cluster API, over
// TLS pinned to the CA its token names.
type JoinRequest struct {
	// Token is the join token; its secret gives the role. It is never
	// logged.
	Token      string `json:"Token"`
	ID         string `json:"ID"`
	Hostname   string `json:"Hostname"`
	Addr       string `json:"Addr"`
	AddrPrefix string `json:"AddrPrefix,omitempty"`
	GossipPort int    `json:"GossipPort"`
	// APIAddr is where the joiner serves the cluster API if it is or
	// becomes a manager (host:port).
	APIAddr   string `json:"APIAddr"`
	DataPlane string `json:"DataPlane"`
	Version   string `json:"Version"`
	// CSR is a PKCS #10 request for the joiner's node key.
	CSR []byte `json:"CSR"`
}

// JoinResponse admits the joiner: its role, its certificate, the roots to
// trust, the gossip keys, the managers and where to gossip.
type JoinResponse struct {
	ClusterID   string   `json:"ClusterID"`
	Role        string   `json:"Role"`        // the role the token gives
	ManagerID   string   `json:"ManagerID"`   // the leader that admitted the node
	ManagerAddr string   `json:"ManagerAddr"` // its cluster API
	Managers    []string `json:"Managers"`    // every manager's cluster API (host:port)
	GossipAddrs []string `json:"GossipAddrs"` // host:port of live members
	Cert        []byte   `json:"Cert"`        // the node certificate, DER
	CACerts     [][]byte `json:"CACerts"`     // the roots to trust, DER
	GossipKeys  [][]byte `json:"GossipKeys"`  // memberlist keys, the primary first
}

// RenewRequest asks for a new node certificate for the same key.
type RenewRequest struct {
	CSR []byte `json:"CSR"`
}

// RenewResponse is a renewed node certificate with the cluster's current
// trust and gossip keys.
type RenewResponse struct {
	Role       string   `json:"Role"`
	Cert       []byte   `json:"Cert"`
	CACerts    [][]byte `json:"CACerts"`
	GossipKeys [][]byte `json:"GossipKeys"`
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
	// FlowOffload says whether a flowtable carries the sandbox's
	// established connections (the iptables plane, lb/flowtable.go): "on
	// (eth0, eth1)", "off", or "unavailable: " and why.
	FlowOffload string `json:"FlowOffload,omitempty"`
}
