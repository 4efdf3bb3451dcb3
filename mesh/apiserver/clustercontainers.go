package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/container"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/records"
)

// Standalone containers on the cluster's attachable overlays. meshctl
// run on a node whose --net names swarm overlays makes the container a
// task of no service on this node, through the cluster (the leader
// allocates its addresses); the node's agent then runs it like a
// service's task. Its stop, start, rm, network connect and disconnect go
// the same way; ps, inspect, exec and logs find it among the node's
// tasks. The cluster port takes these requests from any node for its own
// containers only: the node is the one its certificate names.

// ContainerWrites are the cluster's writes on one node's standalone
// containers (see mesh/manager's RunContainer and the rest).
type ContainerWrites interface {
	RunContainer(ctx context.Context, nodeID string, req api.ContainerCreate) (api.Task, error)
	StopContainer(ctx context.Context, nodeID, ref string, exitCode *int) error
	StartContainer(ctx context.Context, nodeID, ref string) (api.Task, error)
	RemoveContainer(ctx context.Context, nodeID, ref string, force bool) error
	ConnectContainer(ctx context.Context, nodeID, ref string, a api.ContainerAttach) (api.Task, error)
	DisconnectContainer(ctx context.Context, nodeID, ref, network string) (api.Task, error)
}

// seenTimeout bounds the wait for this node's desired state to show a
// container write: run, stop, start and rm return once the node's agent
// has it, so that the ps or exec that follows finds it.
const seenTimeout = 10 * time.Second

// seen waits until this node's desired state satisfies ok. The write is
// done whatever the wait gives: a late state only delays the agent.
func (s *Server) seen(ctx context.Context, ok func(records.Objects) bool) error {
	if !poll(ctx, seenTimeout, func() bool { return ok(s.cfg.Node.Objects()) }) {
		s.log.Warn("a container write is not in this node's desired state yet", "wait", seenTimeout)
	}
	return nil
}

// poll waits until ok, for at most timeout, and says whether it came.
func poll(ctx context.Context, timeout time.Duration, ok func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// stoppedTimeout bounds stop's wait for this node's agent to have
// stopped a container: its grace (SIGTERM, SIGKILL 5 s later) and the
// removal of its sandbox.
const stoppedTimeout = 15 * time.Second

// recordExit waits, as docker stop does, until this node's agent has
// stopped its container task id, and gives the managers the process's
// exit status if they have none (they wrote the stop before the process
// ended), so that it outlives this meshd. Until this node's copy of
// their records has it, ps and inspect here read it from the agent
// (taskView): Exited (143) after a stop, as docker shows a container
// run with --init.
func (s *Server) recordExit(ctx context.Context, cw ContainerWrites, id string) error {
	var code *int
	if !poll(ctx, stoppedTimeout, func() (stopped bool) { code, stopped = s.cfg.Node.StoppedTask(id); return stopped }) {
		s.log.Warn("a stopped container's process has not ended yet", "task_id", id, "wait", stoppedTimeout)
		return nil
	}
	if code == nil {
		return nil
	}
	if _, known := api.ContainerExitCode(s.cfg.Node.Objects().Tasks[id]); known {
		return nil
	}
	if err := cw.StopContainer(ctx, s.cfg.Node.Info().NodeID, id, code); err != nil {
		// The container is stopped all the same; the agent still knows
		// its status.
		s.log.Warn("give the managers a stopped container's exit status", "task_id", id, "err", err)
	}
	return nil
}

// isLocalNetwork says whether ref names one of this node's bridge
// networks.
func (s *Server) isLocalNetwork(ref string) bool {
	if s.cfg.Containers == nil || ref == "" {
		return false
	}
	for _, n := range s.cfg.Containers.Networks(false) {
		if n.Name == ref || n.ID == ref || strings.HasPrefix(n.ID, ref) {
			return true
		}
	}
	return false
}

// isSwarmNetwork says whether ref names a network of the swarm this node
// is in.
func (s *Server) isSwarmNetwork(ref string) bool {
	if s.isLocalNetwork(ref) {
		return false
	}
	_, err := s.cfg.Node.Objects().NetworkID(ref)
	return err == nil
}

// onSwarm says whether a run goes to the cluster: on a node in a swarm,
// its networks are no bridge networks of this node. A network this node
// does not know is asked of the cluster too, which knows every overlay
// at once (this node's state may not have a new one yet) and says
// Docker's "not found" otherwise. A container on bridge networks and
// overlays at once is the engine's, and overlays lists the overlays it
// joins after its start (see runContainer).
func (s *Server) onSwarm(req api.ContainerCreate) (swarm bool, overlays []api.ContainerAttach, err error) {
	if len(req.Networks) == 0 || errors.Is(s.manager(), api.ErrNotInSwarm) {
		return false, nil, nil
	}
	local := false
	for _, a := range req.Networks {
		switch {
		case s.isLocalNetwork(a.Network):
			local = true
		case s.isSwarmNetwork(a.Network):
			overlays = append(overlays, a)
		}
	}
	if local {
		return false, overlays, nil // the local engine names the networks it lacks
	}
	return true, nil, nil
}

// clusterContainers are this node's standalone containers of the
// cluster, stopped ones included.
func (s *Server) clusterContainers() []api.Task {
	if errors.Is(s.manager(), api.ErrNotInSwarm) {
		return nil
	}
	self := s.cfg.Node.Info().NodeID
	var out []api.Task
	for _, t := range s.taskView(s.cfg.Node.Objects()) {
		if t.Standalone != nil && t.NodeID == self {
			out = append(out, t)
		}
	}
	return out
}

// clusterContainer finds one of them by its name.
func (s *Server) clusterContainer(name string) (api.Task, bool) {
	for _, t := range s.clusterContainers() {
		if t.Standalone.Name == name {
			return t, true
		}
	}
	return api.Task{}, false
}

// localContainer finds one of the local engine's containers by its name.
func (s *Server) localContainer(name string) (api.Task, bool) {
	if s.cfg.Containers == nil {
		return api.Task{}, false
	}
	for _, t := range s.cfg.Containers.Tasks() {
		if t.Standalone != nil && t.Standalone.Name == name {
			return t, true
		}
	}
	return api.Task{}, false
}

// nameInUse is Docker's conflict on a container name.
func nameInUse(name string, o api.Task) error {
	return api.Conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`,
		name, o.ContainerID())
}

// ofCluster finds ref among this node's containers of the cluster: false
// when the local engine has it or the cluster has none of that name.
func (s *Server) ofCluster(ref string) (ContainerWrites, api.Task, bool, error) {
	if s.cfg.Containers != nil && s.cfg.Containers.Has(ref) {
		return nil, api.Task{}, false, nil
	}
	t, err := api.MatchContainer(s.clusterContainers(), ref)
	if err != nil {
		return nil, api.Task{}, false, nil
	}
	cw, err := s.cfg.Node.ClusterContainers()
	return cw, t, true, err
}

// runClusterContainer makes a container on this node through the
// cluster, named as the local engine names its own when run names none.
func (s *Server) runClusterContainer(ctx context.Context, req api.ContainerCreate) (any, error) {
	cw, err := s.cfg.Node.ClusterContainers()
	if err != nil {
		return nil, err
	}
	if req.Name == "" {
		req.Name = container.MakeName(func(n string) bool {
			_, local := s.localContainer(n)
			_, cluster := s.clusterContainer(n)
			return local || cluster
		})
	} else if o, ok := s.localContainer(req.Name); ok {
		return nil, nameInUse(req.Name, o)
	}
	self := s.cfg.Node.Info()
	if len(req.Publish) > 0 || req.PublishAll {
		// The host ports are this node's: it fixes them, free of its
		// bridge containers' and of what the cluster publishes here, and
		// the leader checks them against the cluster's state.
		img, err := images.Lookup(req.Image)
		if err != nil {
			return nil, api.NotFound("%v", err)
		}
		if req.Publish, err = container.AllocatePorts(req, img, s.hostPortTaken(self.NodeID)); err != nil {
			return nil, err
		}
		req.PublishAll = false
	}
	t, err := cw.RunContainer(ctx, self.NodeID, req)
	if err != nil {
		return nil, err
	}
	t.NodeName = self.NodeName
	return t, s.seen(ctx, func(o records.Objects) bool { _, ok := o.Tasks[t.ID]; return ok })
}

// hostPortTaken says whether a host port of nodeID (this node) is in use:
// by one of its bridge containers, a service (ingress publishes on every
// node) or one of its containers on a swarm network.
func (s *Server) hostPortTaken(nodeID string) func(proto string, port uint16) bool {
	st := s.cfg.Node.Objects()
	return func(proto string, port uint16) bool {
		if s.cfg.Containers != nil && s.cfg.Containers.PortTaken(proto, port) {
			return true
		}
		return st.HostPortTaken(nodeID, proto, port)
	}
}

// clusterConnection connects or disconnects one of this node's
// containers of the cluster, live, through the cluster; it returns once
// this node's desired state has the change, so that the exec that follows
// finds the network. A bridge network of this node is the node's alone:
// its agent connects the task there, and the cluster hears nothing of it.
func (s *Server) clusterConnection(ctx context.Context, cw ContainerWrites, t api.Task, network string, a api.ContainerAttach, connect bool) (any, error) {
	if s.isLocalNetwork(network) {
		var err error
		if connect {
			err = s.cfg.Node.ConnectBridge(ctx, t.ID, network, a)
		} else {
			err = s.cfg.Node.DisconnectBridge(ctx, t.ID, network)
		}
		if err != nil {
			return nil, err
		}
		return struct{}{}, nil
	}
	self := s.cfg.Node.Info().NodeID
	var (
		after api.Task
		err   error
	)
	if connect {
		a.Network = network
		after, err = cw.ConnectContainer(ctx, self, t.ID, a)
	} else {
		after, err = cw.DisconnectContainer(ctx, self, t.ID, network)
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, s.seen(ctx, func(o records.Objects) bool {
		return slices.EqualFunc(o.Tasks[t.ID].Networks, after.Networks, func(x, y api.TaskNetwork) bool {
			return x.NetworkID == y.NetworkID && x.Addr == y.Addr
		})
	})
}

// The cluster port's side: a node's requests on its own containers,
// applied by the leader (forwarded there by another manager).

// nodeWrites is the node a cluster-port container request is for and
// the writes that apply it, decoding the body into req when it is not nil.
func (s *Server) nodeWrites(r *http.Request, req any) (string, Writes, error) {
	node, err := nodeFor(r)
	if err != nil {
		return "", nil, err
	}
	if req != nil {
		if err := decodeBody(r, req); err != nil {
			return "", nil, err
		}
	}
	w, err := s.cfg.Node.Control()
	return node, w, err
}

func (s *Server) runNodeContainer(r *http.Request) (any, error) {
	var req api.ContainerCreate
	node, w, err := s.nodeWrites(r, &req)
	if err != nil {
		return nil, err
	}
	return w.RunContainer(r.Context(), node, req)
}

func (s *Server) stopNodeContainer(r *http.Request) (any, error) {
	var req api.NodeContainerStop
	node, w, err := s.nodeWrites(r, &req)
	if err != nil {
		return nil, err
	}
	return struct{}{}, w.StopContainer(r.Context(), node, r.PathValue("ref"), req.ExitCode)
}

func (s *Server) startNodeContainer(r *http.Request) (any, error) {
	node, w, err := s.nodeWrites(r, nil)
	if err != nil {
		return nil, err
	}
	return w.StartContainer(r.Context(), node, r.PathValue("ref"))
}

func (s *Server) removeNodeContainer(r *http.Request) (any, error) {
	node, w, err := s.nodeWrites(r, nil)
	if err != nil {
		return nil, err
	}
	force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
	return struct{}{}, w.RemoveContainer(r.Context(), node, r.PathValue("ref"), force)
}

func (s *Server) connectNodeContainer(r *http.Request) (any, error) {
	return s.nodeConnection(r, true)
}

func (s *Server) disconnectNodeContainer(r *http.Request) (any, error) {
	return s.nodeConnection(r, false)
}

// nodeConnection is a node's network connect or disconnect of its own
// container; the request's Attach names the network.
func (s *Server) nodeConnection(r *http.Request, connect bool) (any, error) {
	var req api.NetworkConnect
	node, w, err := s.nodeWrites(r, &req)
	if err != nil {
		return nil, err
	}
	if connect {
		return w.ConnectContainer(r.Context(), node, r.PathValue("ref"), req.Attach)
	}
	return w.DisconnectContainer(r.Context(), node, r.PathValue("ref"), req.Attach.Network)
}
