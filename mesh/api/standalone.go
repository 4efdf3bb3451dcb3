package api

import (
	"context"
	"net/http"
	"net/url"
)

// Standalone containers: what meshctl run makes on one node, outside any
// service, on the node's bridge networks (and, later, attachable
// overlays). A standalone container is shown as a [Task] with Standalone
// set, so that ps, inspect, exec and logs treat it like a task's
// container.

// DefaultBridge is the name of the network a container joins when run
// names none, as Docker's "bridge" (its Linux bridge is mesh0, as
// Docker's docker0). Containers there get no names in DNS.
const DefaultBridge = "bridge"

// Standalone is what a standalone container has that a service's task
// has not.
type Standalone struct {
	// Name is the container's name: run's --name, or one made up as
	// Docker does (adjective_surname).
	Name string `json:"Name"`
	// Ports are its published ports, with the host port chosen at run
	// for -P and for -p without one.
	Ports []ContainerPort `json:"Ports,omitempty"`
	// AutoRemove is run's --rm: the container goes when its process ends.
	AutoRemove bool `json:"AutoRemove,omitempty"`
	// Idle: the container's own process only holds its namespaces; a
	// foreground run executes the command in it (see ContainerCreate.Idle).
	Idle bool `json:"Idle,omitempty"`
	// Entrypoint, WorkingDir and Hostname are run's --entrypoint, -w and
	// --hostname; Hostname empty is the 12-hex ID's start.
	Entrypoint string `json:"Entrypoint,omitempty"`
	WorkingDir string `json:"WorkingDir,omitempty"`
	Hostname   string `json:"Hostname,omitempty"`
	// Command is what a foreground run executes in an idle container:
	// the command as the image runs it (alpine's ping is BusyBox's).
	Command []string `json:"Command,omitempty"`
	// ExitCode is the status a foreground command reported at its end
	// (ContainerStop's ExitCode); nil when the process's own is known.
	ExitCode *int `json:"ExitCode,omitempty"`
	// ContainerID is the container's ID when it outlives its first task:
	// a start of a stopped container on a swarm overlay runs a new task
	// (a task runs once), and the container keeps its ID, its sandbox's
	// name and its hostname, as docker start keeps them.
	ContainerID string `json:"ContainerID,omitempty"`
	// Attachment: the task is no process but a container of its node's
	// engine (a bridge container, ContainerID) on the swarm's attachable
	// overlays, which network connect put there: the leader keeps its
	// addresses, its node's agent builds its links in the container's
	// namespace. Docker's network-attachment task.
	Attachment bool `json:"Attachment,omitempty"`
}

// IsAttachment says whether t is an engine container's attachment to
// overlays (Standalone.Attachment): no process of its own.
func (t Task) IsAttachment() bool { return t.Standalone != nil && t.Standalone.Attachment }

// ContainerPort is one published port of a standalone container:
// HostIP:HostPort on the node is DNATed to the container's Port.
type ContainerPort struct {
	Proto    string `json:"Proto"`            // tcp or udp
	HostIP   string `json:"HostIP,omitempty"` // "" is 0.0.0.0
	HostPort uint16 `json:"HostPort"`         // 0 in a request: one from EphemeralPortFirst up
	Port     uint16 `json:"Port"`             // in the container
}

// EphemeralPortFirst is where -P and -p without a host port start, as
// Docker's 32768.
const EphemeralPortFirst = 32768

// ContainerAttach is one network a container joins: --net with its
// --net-alias and --ip, or network connect's --alias and --ip.
type ContainerAttach struct {
	Network string   `json:"Network"`           // name or ID
	Aliases []string `json:"Aliases,omitempty"` // per network; several containers may share one
	IP      string   `json:"IP,omitempty"`      // a fixed address in the network's subnet
	// Local is set when a node connects a container of its own engine to
	// an overlay: the leader makes (or extends) that container's
	// attachment task.
	Local *LocalContainer `json:"Local,omitempty"`
}

// LocalContainer is a node's engine container as the leader records its
// attachment: its 64-hex ID and its name.
type LocalContainer struct {
	ID   string `json:"ID"`
	Name string `json:"Name"`
}

// ContainerCreate is meshctl run's request.
type ContainerCreate struct {
	Name       string   `json:"Name,omitempty"`
	Image      string   `json:"Image"`
	Cmd        []string `json:"Cmd,omitempty"`
	Entrypoint string   `json:"Entrypoint,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	Hostname   string   `json:"Hostname,omitempty"`
	// Networks in connection order; empty joins the default bridge.
	Networks []ContainerAttach `json:"Networks,omitempty"`
	// Publish are -p's ports; PublishAll (-P) adds the image's exposed
	// ports on ephemeral host ports.
	Publish    []ContainerPort `json:"Publish,omitempty"`
	PublishAll bool            `json:"PublishAll,omitempty"`
	AutoRemove bool            `json:"AutoRemove,omitempty"`
	// Idle makes the container's process hold its namespaces and nothing
	// else: a foreground run (no -d) then executes Cmd in it attached to
	// the terminal, and reports the status with ContainerStop.
	Idle bool `json:"Idle,omitempty"`
}

// ContainerStop is stop's request: Timeout seconds of grace before
// SIGKILL (nil: the default), and, from a foreground run, the exit status
// of the command it ran.
type ContainerStop struct {
	Timeout  *int `json:"Timeout,omitempty"`
	ExitCode *int `json:"ExitCode,omitempty"`
}

// NetworkConnect is network connect's and disconnect's request.
type NetworkConnect struct {
	Container string          `json:"Container"`
	Attach    ContainerAttach `json:"Attach,omitzero"` // Network is the path's
	Force     bool            `json:"Force,omitempty"` // disconnect -f
}

// RunContainer creates and starts a standalone container on the node
// meshd runs on.
func (c *Client) RunContainer(ctx context.Context, req ContainerCreate) (Task, error) {
	var t Task
	err := c.do(ctx, http.MethodPost, "/v1/containers", req, &t)
	return t, err
}

// StopContainer stops a running container (a no-op on a stopped one).
func (c *Client) StopContainer(ctx context.Context, ref string, req ContainerStop) error {
	return c.do(ctx, http.MethodPost, "/v1/containers/"+url.PathEscape(ref)+"/stop", req, nil)
}

// StartContainer starts a stopped container again.
func (c *Client) StartContainer(ctx context.Context, ref string) (Task, error) {
	var t Task
	err := c.do(ctx, http.MethodPost, "/v1/containers/"+url.PathEscape(ref)+"/start", nil, &t)
	return t, err
}

// RemoveContainer removes a container; a running one only with force.
func (c *Client) RemoveContainer(ctx context.Context, ref string, force bool) error {
	q := ""
	if force {
		q = "?force=1"
	}
	return c.do(ctx, http.MethodDelete, "/v1/containers/"+url.PathEscape(ref)+q, nil, nil)
}

// ConnectNetwork attaches a running container to a network.
func (c *Client) ConnectNetwork(ctx context.Context, network string, req NetworkConnect) error {
	return c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/connect", req, nil)
}

// DisconnectNetwork detaches a container from a network.
func (c *Client) DisconnectNetwork(ctx context.Context, network string, req NetworkConnect) error {
	return c.do(ctx, http.MethodPost, "/v1/networks/"+url.PathEscape(network)+"/disconnect", req, nil)
}

// The cluster's side of the standalone containers on attachable overlays
// (cluster port): a node asks a manager to make, stop, start, remove,
// connect or disconnect one of its own containers. The node is the one the caller's
// certificate names; a manager forwarding a node's request to the leader
// names it in NodeForHeader, which the leader believes from a manager's
// certificate only.

// ClusterContainersPath is where the cluster port takes them.
const ClusterContainersPath = "/v1/cluster/containers"

// NodeForHeader names the node a manager forwards a container request
// for.
const NodeForHeader = "X-Meshd-Node-For"

// NodeContainerStop is a cluster stop's request.
type NodeContainerStop struct {
	ExitCode *int `json:"ExitCode,omitempty"`
}

// nodeFor is the header naming nodeID; none when nodeID is empty (the
// caller's certificate then names it).
func nodeFor(nodeID string) http.Header {
	if nodeID == "" {
		return nil
	}
	return http.Header{NodeForHeader: {nodeID}}
}

// RunNodeContainer makes a container of nodeID ("" for the caller) on
// the cluster's attachable overlays.
func (c *Client) RunNodeContainer(ctx context.Context, nodeID string, req ContainerCreate) (Task, error) {
	var t Task
	err := c.doWith(ctx, http.MethodPost, ClusterContainersPath, nodeFor(nodeID), req, &t)
	return t, err
}

// StopNodeContainer stops one of nodeID's containers of the cluster.
func (c *Client) StopNodeContainer(ctx context.Context, nodeID, ref string, exitCode *int) error {
	return c.doWith(ctx, http.MethodPost, ClusterContainersPath+"/"+url.PathEscape(ref)+"/stop", nodeFor(nodeID),
		NodeContainerStop{ExitCode: exitCode}, nil)
}

// StartNodeContainer starts one of nodeID's stopped containers again.
func (c *Client) StartNodeContainer(ctx context.Context, nodeID, ref string) (Task, error) {
	var t Task
	err := c.doWith(ctx, http.MethodPost, ClusterContainersPath+"/"+url.PathEscape(ref)+"/start", nodeFor(nodeID), nil, &t)
	return t, err
}

// RemoveNodeContainer removes one of nodeID's containers; a running one
// only with force.
func (c *Client) RemoveNodeContainer(ctx context.Context, nodeID, ref string, force bool) error {
	q := ""
	if force {
		q = "?force=1"
	}
	return c.doWith(ctx, http.MethodDelete, ClusterContainersPath+"/"+url.PathEscape(ref)+q, nodeFor(nodeID), nil, nil)
}

// ConnectNodeContainer attaches one of nodeID's containers to one more
// attachable overlay (a.Network), live.
func (c *Client) ConnectNodeContainer(ctx context.Context, nodeID, ref string, a ContainerAttach) (Task, error) {
	var t Task
	err := c.doWith(ctx, http.MethodPost, ClusterContainersPath+"/"+url.PathEscape(ref)+"/connect", nodeFor(nodeID),
		NetworkConnect{Attach: a}, &t)
	return t, err
}

// DisconnectNodeContainer detaches one of nodeID's containers from one of
// its overlays, live.
func (c *Client) DisconnectNodeContainer(ctx context.Context, nodeID, ref, network string) (Task, error) {
	var t Task
	err := c.doWith(ctx, http.MethodPost, ClusterContainersPath+"/"+url.PathEscape(ref)+"/disconnect", nodeFor(nodeID),
		NetworkConnect{Attach: ContainerAttach{Network: network}}, &t)
	return t, err
}
