package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/container"
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
	// ConnectOverlay and DisconnectOverlay record a container's
	// attachment to a swarm overlay, whose address the leader gave;
	// Overlays lists them.
	ConnectOverlay(ref string, tn api.TaskNetwork) (container.OverlayLink, error)
	DisconnectOverlay(ref, network string) (api.TaskNetwork, error)
	Overlays(ref string) []api.TaskNetwork
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
	onSwarm, overlays, err := s.onSwarm(req)
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
	// Bridge networks and overlays: the engine runs the container on its
	// bridges, then it joins the overlays as network connect joins them.
	// A foreground command runs once run returns, on every network; a
	// detached container's process starts a moment before its overlays.
	req.Networks = slices.DeleteFunc(slices.Clone(req.Networks), func(a api.ContainerAttach) bool {
		return slices.ContainsFunc(overlays, func(o api.ContainerAttach) bool { return o.Network == a.Network })
	})
	t, err := e.Run(req)
	if err != nil {
		return nil, err
	}
	for _, a := range overlays {
		if _, err := s.overlayConnection(r.Context(), e, t.ContainerID(), a.Network, a, true); err != nil {
			// Nothing is left of a run that failed.
			if rerr := e.Remove(t.ContainerID(), true); rerr != nil {
				s.log.Warn("remove a container whose run failed", "container", t.Standalone.Name, "err", rerr)
			}
			if rerr := s.removeAttachment(r.Context(), t.ContainerID()); rerr != nil {
				s.log.Warn("give back a failed run's overlay addresses", "container", t.Standalone.Name, "err", rerr)
			}
			return nil, err
		}
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
		if err := s.seen(r.Context(), func(o records.Objects) bool { return !o.Tasks[t.ID].Current() }); err != nil {
			return nil, err
		}
		if req.ExitCode != nil || !t.Current() { // a foreground run's status, or stopped before
			return struct{}{}, nil
		}
		return struct{}{}, s.recordExit(r.Context(), cw, t.ID)
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
	c, _ := api.MatchContainer(s.standaloneTasks(), r.PathValue("ref"))
	overlays := e.Overlays(r.PathValue("ref"))
	if err := e.Remove(r.PathValue("ref"), force); err != nil {
		return nil, err
	}
	if len(overlays) > 0 {
		// Its attachment goes with it, and its addresses with that.
		if err := s.removeAttachment(r.Context(), c.ContainerID()); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}

// removeAttachment removes a removed engine container's attachment task.
func (s *Server) removeAttachment(ctx context.Context, id string) error {
	cw, err := s.cfg.Node.ClusterContainers()
	if err != nil {
		return fmt.Errorf("give back the overlay addresses of container %s: %w", api.Clip(id), err)
	}
	if err := cw.RemoveContainer(ctx, s.cfg.Node.Info().NodeID, id, true); err != nil && api.StatusCode(err) != http.StatusNotFound {
		return fmt.Errorf("give back the overlay addresses of container %s: %w", api.Clip(id), err)
	}
	return s.seen(ctx, func(o records.Objects) bool {
		for _, t := range o.Tasks {
			if t.IsAttachment() && t.ContainerID() == id {
				return false
			}
		}
		return true
	})
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
	req.Attach.Local = nil // the node's own word to its managers, never a client's
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
	if s.isSwarmNetwork(network) || (!connect && slices.ContainsFunc(e.Overlays(req.Container), func(tn api.TaskNetwork) bool {
		return tn.NetworkID == network || tn.NetworkName == network
	})) {
		return s.overlayConnection(r.Context(), e, req.Container, network, req.Attach, connect)
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

// overlayConnection connects a container of this node's engine to an
// attachable overlay, or disconnects it, as docker's network connect
// does for a container on a bridge network: the leader gives (or takes
// back) its address in the container's attachment task, the engine keeps
// the attachment with the container, and the agent builds the link, which
// is there when this returns.
func (s *Server) overlayConnection(ctx context.Context, e Containers, ref, network string, a api.ContainerAttach, connect bool) (any, error) {
	c, err := api.MatchContainer(s.standaloneTasks(), ref)
	if err != nil {
		return nil, err
	}
	cw, err := s.cfg.Node.ClusterContainers()
	if err != nil {
		return nil, err
	}
	self, id := s.cfg.Node.Info().NodeID, c.ContainerID()
	var t api.Task
	if connect {
		a.Network = network
		a.Local = &api.LocalContainer{ID: id, Name: c.Standalone.Name}
		if t, err = cw.ConnectContainer(ctx, self, id, a); err != nil {
			return nil, err
		}
		i := slices.IndexFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == network || tn.NetworkName == network })
		if i < 0 {
			i = len(t.Networks) - 1 // the one connect added: network named it by an ID prefix
		}
		if _, err := e.ConnectOverlay(id, t.Networks[i]); err != nil {
			// The engine refused (the container went meanwhile): the
			// address goes back.
			if _, derr := cw.DisconnectContainer(ctx, self, id, t.Networks[i].NetworkID); derr != nil {
				s.log.Warn("give back an overlay address", "container", c.Standalone.Name, "err", derr)
			}
			return nil, err
		}
	} else {
		tn, err := e.DisconnectOverlay(id, network)
		if err != nil {
			return nil, err
		}
		if t, err = cw.DisconnectContainer(ctx, self, id, tn.NetworkID); err != nil && api.StatusCode(err) != http.StatusNotFound {
			return nil, err
		}
	}
	want := t.Networks
	if err := s.seen(ctx, func(o records.Objects) bool {
		got := o.Tasks[t.ID].Networks
		return slices.EqualFunc(got, want, func(x, y api.TaskNetwork) bool { return x.NetworkID == y.NetworkID })
	}); err != nil {
		return nil, err
	}
	if err := s.cfg.Node.SyncAgent(ctx); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
