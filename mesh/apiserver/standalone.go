package apiserver

import (
	"context"
	"net/http"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// Containers are this node's local bridge networks and standalone
// containers (mesh/container's Engine).
type Containers interface {
	CreateNetwork(req api.NetworkCreate) (api.NetworkResource, error)
	// RemoveNetwork says false when ref names no local network.
	RemoveNetwork(ref string) (bool, error)
	Networks(detail bool) []api.NetworkResource
	Run(req api.ContainerCreate) (api.Task, error)
	Stop(ref string, exitCode *int) (api.Task, error)
	Start(ref string) (api.Task, error)
	Remove(ref string, force bool) error
	Has(ref string) bool
	Connect(network, ref string, a api.ContainerAttach) error
	Disconnect(network, ref string) error
	Tasks() []api.Task
	TaskLogPath(id string) string
	Ended(id string) (ended, ok bool)
	// PortTaken says whether a container publishes a host port.
	PortTaken(proto string, port uint16) bool
	// TaskLinks are a swarm task's connections to this node's bridge
	// networks (network connect), which live on this node alone.
	TaskLinks(taskID string) []api.TaskNetwork
}

// errNoContainers answers where the node runs no container engine.
var errNoContainers = api.Errorf(http.StatusServiceUnavailable, "this meshd runs no standalone containers")

func (s *Server) engine() (Containers, error) {
	if s.cfg.Containers == nil {
		return nil, errNoContainers
	}
	return s.cfg.Containers, nil
}

// standaloneTasks are the standalone containers as this node's tasks.
func (s *Server) standaloneTasks() []api.Task {
	if s.cfg.Containers == nil {
		return nil
	}
	self := s.cfg.Node.Info()
	tasks := s.cfg.Containers.Tasks()
	for i := range tasks {
		tasks[i].NodeID, tasks[i].NodeName = self.NodeID, self.NodeName
	}
	return tasks
}

// isBridge says whether a network create asks for a local network:
// bridge is the default driver, as Docker's.
func isBridge(req api.NetworkCreate) bool {
	return req.Driver == "" || req.Driver == api.DriverBridge
}

// createLocalNetwork makes a bridge network on this node, refusing a
// name a swarm network has.
func (s *Server) createLocalNetwork(req api.NetworkCreate) (any, error) {
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	if _, err := s.cfg.Node.Objects().NetworkID(req.Name); err == nil && req.Name != "" {
		return nil, api.Conflict("network with name %s already exists", req.Name)
	}
	r, err := e.CreateNetwork(req)
	if err != nil {
		return nil, err
	}
	n := api.Network{ID: r.ID, Name: r.Name, Driver: r.Driver, Scope: r.Scope, Internal: r.Internal, CreatedAt: r.Created}
	if len(r.IPAM.Config) > 0 {
		n.Subnet, n.Gateway, n.IPRange = r.IPAM.Config[0].Subnet, r.IPAM.Config[0].Gateway, r.IPAM.Config[0].IPRange
	}
	return n, nil
}

func (s *Server) runContainer(r *http.Request) (any, error) {
	var req api.ContainerCreate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	onSwarm, err := s.onSwarm(req)
	if err != nil {
		return nil, err
	}
	if onSwarm {
		return s.runClusterContainer(r.Context(), req)
	}
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	if o, ok := s.clusterContainer(req.Name); ok && req.Name != "" {
		return nil, nameInUse(req.Name, o)
	}
	t, err := e.Run(req)
	if err != nil {
		return nil, err
	}
	self := s.cfg.Node.Info()
	t.NodeID, t.NodeName = self.NodeID, self.NodeName
	return t, nil
}

func (s *Server) stopContainer(r *http.Request) (any, error) {
	var req api.ContainerStop
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if cw, t, ok, err := s.ofCluster(r.PathValue("ref")); ok || err != nil {
		if err != nil {
			return nil, err
		}
		if err := cw.StopContainer(r.Context(), s.cfg.Node.Info().NodeID, t.ID, req.ExitCode); err != nil {
			return nil, err
		}
		return struct{}{}, s.seen(r.Context(), func(o records.Objects) bool { return !o.Tasks[t.ID].Current() })
	}
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := s.standaloneOnly(e, r.PathValue("ref")); err != nil {
		return nil, err
	}
	if _, err := e.Stop(r.PathValue("ref"), req.ExitCode); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) startContainer(r *http.Request) (any, error) {
	if cw, t, ok, err := s.ofCluster(r.PathValue("ref")); ok || err != nil {
		if err != nil {
			return nil, err
		}
		if t.Current() && api.Terminal(t.Status.State) {
			// Its process ended and the managers have not heard yet: it
			// is stopped first, so that start runs it again.
			if err := cw.StopContainer(r.Context(), s.cfg.Node.Info().NodeID, t.ID, nil); err != nil {
				return nil, err
			}
		}
		t, err := cw.StartContainer(r.Context(), s.cfg.Node.Info().NodeID, t.ID)
		if err != nil {
			return nil, err
		}
		t.NodeName = s.cfg.Node.Info().NodeName
		return t, s.seen(r.Context(), func(o records.Objects) bool { return o.Tasks[t.ID].Current() })
	}
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := s.standaloneOnly(e, r.PathValue("ref")); err != nil {
		return nil, err
	}
	t, err := e.Start(r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	self := s.cfg.Node.Info()
	t.NodeID, t.NodeName = self.NodeID, self.NodeName
	return t, nil
}

func (s *Server) removeContainer(r *http.Request) (any, error) {
	if cw, t, ok, err := s.ofCluster(r.PathValue("ref")); ok || err != nil {
		if err != nil {
			return nil, err
		}
		force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
		// This node knows first that its process ended: the managers hear
		// it through gossip.
		force = force || api.Terminal(t.Status.State)
		if err := cw.RemoveContainer(r.Context(), s.cfg.Node.Info().NodeID, t.ID, force); err != nil {
			return nil, err
		}
		return struct{}{}, s.seen(r.Context(), func(o records.Objects) bool { _, ok := o.Tasks[t.ID]; return !ok })
	}
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := s.standaloneOnly(e, r.PathValue("ref")); err != nil {
		return nil, err
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	if err := e.Remove(r.PathValue("ref"), force); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// standaloneOnly refuses a service's task: its manager decides its fate.
func (s *Server) standaloneOnly(e Containers, ref string) error {
	if e.Has(ref) {
		return nil
	}
	if t, err := api.MatchContainer(s.visibleTasks(s.cfg.Node.Objects()), ref); err == nil && t.Standalone == nil {
		return api.Conflict("container %s is a task of service %s: use meshctl service scale, update or rm", api.ContainerName(t), t.ServiceName)
	}
	return api.NotFound("No such container: %s", api.Clip(ref))
}

func (s *Server) connectNetwork(r *http.Request) (any, error) {
	return s.connection(r, true)
}

func (s *Server) disconnectNetwork(r *http.Request) (any, error) {
	return s.connection(r, false)
}

// connection connects or disconnects a standalone container.
func (s *Server) connection(r *http.Request, connect bool) (any, error) {
	var req api.NetworkConnect
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	network := r.PathValue("ref")
	if cw, t, ok, err := s.ofCluster(req.Container); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return s.clusterConnection(r.Context(), cw, t, network, req.Attach, connect)
	}
	if t, err := api.MatchContainer(s.visibleTasks(s.cfg.Node.Objects()), req.Container); err == nil && t.Standalone == nil {
		return s.taskConnection(r.Context(), t, network, req.Attach, connect)
	}
	// Another node's task or container is no container here, as Docker's.
	e, err := s.engine()
	if err != nil && s.isSwarmNetwork(network) {
		return nil, api.NotFound("No such container: %s", api.Clip(req.Container))
	}
	if err != nil {
		return nil, err
	}
	if err := s.standaloneOnly(e, req.Container); err != nil {
		return nil, err
	}
	if s.isSwarmNetwork(network) {
		return nil, api.Conflict("network %s is a swarm network: a container on bridge networks cannot join it yet; run the container with --network %s", api.Clip(network), api.Clip(network))
	}
	if connect {
		err = e.Connect(network, req.Container, req.Attach)
	} else {
		err = e.Disconnect(network, req.Container)
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// taskConnection connects or disconnects the container of a service's
// task, as docker does on the task's node: live, on that node only.
func (s *Server) taskConnection(ctx context.Context, t api.Task, network string, a api.ContainerAttach, connect bool) (any, error) {
	self := s.cfg.Node.Info()
	switch {
	case t.NodeID != self.NodeID:
		return nil, api.Conflict("container %s runs on node %s: connect or disconnect it there (meshctl --node %s)",
			api.ContainerName(t), t.NodeName, t.NodeName)
	case !t.Current():
		return nil, api.Conflict("Container %s is not running", t.ContainerID())
	}
	cw, err := s.cfg.Node.ClusterContainers()
	if err != nil {
		return nil, err
	}
	return s.clusterConnection(ctx, cw, t, network, a, connect)
}
