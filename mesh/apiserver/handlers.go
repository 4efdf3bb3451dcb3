package apiserver

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/trace"
)

// Reads.

func (s *Server) info(*http.Request) (any, error) {
	info := s.cfg.Node.Info()
	nodes := s.cfg.Node.Nodes()
	info.Nodes, info.NodesReady = len(nodes), 0
	for _, n := range nodes {
		if n.Status == api.StatusReady {
			info.NodesReady++
		}
	}
	return info, nil
}

// manager refuses a cluster read on a node that is not a manager.
func (s *Server) manager() error { return s.cfg.Node.Manager() }

func (s *Server) nodes(*http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	return s.cfg.Node.Nodes(), nil
}

func (s *Server) node(r *http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	return records.FindNode(s.cfg.Node.Nodes(), r.PathValue("ref"))
}

func (s *Server) joinToken(r *http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	return s.cfg.Node.JoinToken(r.PathValue("role"))
}

// networks lists the networks on any node, as Docker's do: the swarm's
// this node knows (a worker's from the desired state it verified) and its
// local ones.
func (s *Server) networks(*http.Request) (any, error) {
	return networkResources(s.cfg.Node.Objects(), s.networkSite(), false), nil
}

// network shows one network as this node sees it: its endpoints here.
func (s *Server) network(r *http.Request) (any, error) {
	site := s.networkSite()
	nets := map[string]api.NetworkResource{}
	for _, n := range networkResources(s.cfg.Node.Objects(), site, true) {
		nets[n.ID] = n
	}
	ref := r.PathValue("ref")
	if ref == gatewayAlias && site.inSwarm {
		ref = site.gateway.Name
	}
	id, err := records.Resolve("network", nets, func(n api.NetworkResource) string { return n.Name }, ref)
	if err != nil {
		return nil, err
	}
	return nets[id], nil
}

// networkSite gathers this node's side of the network views.
func (s *Server) networkSite() networkSite {
	info := s.cfg.Node.Info()
	gw, ok := s.cfg.Node.Gateway()
	site := networkSite{self: cmp.Or(info.NodeID, info.NodeName), gateway: gw, inSwarm: ok, built: s.cfg.Node.NetworkBuilt}
	if s.cfg.Containers != nil {
		site.local = s.cfg.Containers.Networks
	}
	return site
}

func (s *Server) services(*http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	return s.serviceView(s.cfg.Node.Objects()), nil
}

// serviceView is [serviceView] with this node's reads.
func (s *Server) serviceView(st records.Objects) []api.Service {
	ready := map[string]bool{}
	for _, n := range s.cfg.Node.Nodes() {
		if n.Status == api.StatusReady {
			ready[n.ID] = true
		}
	}
	return serviceView(st, s.cfg.Node.TaskStatuses(), s.cfg.Node.Programmed(), ready)
}

func (s *Server) service(r *http.Request) (any, error) {
	if err := s.manager(); err != nil {
		return nil, err
	}
	st := s.cfg.Node.Objects()
	id, err := st.ServiceID(r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	for _, svc := range s.serviceView(st) {
		if svc.ID == id {
			return svc, nil
		}
	}
	return nil, api.NotFound("service %s not found", api.Clip(r.PathValue("ref")))
}

// tasks lists tasks; any node lists its own (meshctl ps), only a
// manager the cluster's.
func (s *Server) tasks(r *http.Request) (any, error) {
	self := s.cfg.Node.Info()
	node := r.URL.Query().Get("node")
	if own := node != "" && (node == self.NodeID || node == self.NodeName); !own {
		if err := s.manager(); errors.Is(err, api.ErrNotInSwarm) && node == "" && r.URL.Query().Get("service") == "" {
			// Outside a swarm a node has its standalone containers
			// alone: ps and run work there, as docker's do.
			return s.standaloneTasks(), nil
		} else if err != nil {
			return nil, err
		}
	}
	st := s.cfg.Node.Objects()
	tasks := s.taskView(st)
	if ref := r.URL.Query().Get("service"); ref != "" {
		id, err := st.ServiceID(ref)
		if err != nil {
			return nil, err
		}
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.ServiceID != id })
	}
	if node != "" {
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.NodeID != node && t.NodeName != node })
	} else {
		// Another node's standalone containers are its own, as docker
		// ps's: names are per node, and exec reaches them there only.
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.Standalone != nil && t.NodeID != self.NodeID })
	}
	if r.URL.Query().Get("service") == "" && (node == "" || node == self.NodeID || node == self.NodeName) {
		tasks = append(tasks, s.standaloneTasks()...)
	}
	return tasks, nil
}

// task finds one task: among the cluster's on a manager, among its own
// on a worker (meshctl exec).
func (s *Server) task(r *http.Request) (any, error) {
	tasks := map[string]api.Task{}
	for _, t := range s.visibleTasks(s.cfg.Node.Objects()) {
		tasks[t.ID] = t
	}
	id, err := records.Resolve("task", tasks, currentName, r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	return tasks[id], nil
}

func (s *Server) namespaces(*http.Request) (any, error) {
	dir, names, err := s.cfg.Node.Namespaces()
	if err != nil {
		return nil, err
	}
	st := s.cfg.Node.Objects()
	out := make([]api.Namespace, 0, len(names))
	for _, name := range names {
		ns := api.Namespace{Name: name, Path: filepath.Join(dir, name)}
		ns.Kind, ns.Owner = describeNamespace(st, name)
		out = append(out, ns)
	}
	return out, nil
}

func (s *Server) lbTables(*http.Request) (any, error) { return s.cfg.Node.LBTables(), nil }

// kernel is the node's kernel snapshot, its namespaces described as ns
// ls describes them.
func (s *Server) kernel(r *http.Request) (any, error) { return s.snapshot(r.Context()) }

// trace traces a connection through the snapshots the request carries,
// or this node's own.
func (s *Server) trace(r *http.Request) (any, error) {
	var req api.TraceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	snaps := req.Snapshots
	if len(snaps) == 0 {
		own, err := s.snapshot(r.Context())
		if err != nil {
			return nil, err
		}
		snaps = []api.KernelSnapshot{own}
	}
	t, err := trace.Run(snaps, req)
	if err != nil {
		return nil, api.Invalid("%v", err)
	}
	return t, nil
}

func (s *Server) snapshot(ctx context.Context) (api.KernelSnapshot, error) {
	snap, err := s.cfg.Node.Kernel(ctx)
	if err != nil {
		return snap, err
	}
	st := s.cfg.Node.Objects()
	for i := range snap.Namespaces {
		ns := &snap.Namespaces[i]
		if ns.Name == api.HostNamespace && ns.Path == "" {
			ns.Kind = "host"
			continue
		}
		ns.Kind, ns.Owner = describeNamespace(st, ns.Name)
	}
	return snap, nil
}

// Writes.

func (s *Server) swarmInit(r *http.Request) (any, error) {
	var req api.SwarmInit
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Swarm.Init(r.Context(), req)
}

func (s *Server) swarmJoin(r *http.Request) (any, error) {
	var req api.SwarmJoin
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Swarm.Join(r.Context(), req)
}

func (s *Server) swarmLeave(r *http.Request) (any, error) {
	var req api.SwarmLeave
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return struct{}{}, s.cfg.Swarm.Leave(r.Context(), req)
}

func (s *Server) rotateJoinToken(r *http.Request) (any, error) {
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.RotateJoinToken(r.Context(), r.PathValue("role"))
}

// join admits a node with the role its token gives.
func (s *Server) join(r *http.Request) (any, error) {
	var req api.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.Join(r.Context(), req)
}

// renew signs a new certificate for the calling node (or the one a
// forwarding manager names).
func (s *Server) renew(r *http.Request) (any, error) {
	nodeID, err := renewFor(r)
	if err != nil {
		return nil, err
	}
	var req api.RenewRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.Renew(r.Context(), nodeID, req)
}

func (s *Server) swarmCA(*http.Request) (any, error) { return s.cfg.Node.CA() }

func (s *Server) rotateCA(r *http.Request) (any, error) {
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.RotateCA(r.Context())
}

func (s *Server) updateNode(r *http.Request) (any, error) {
	var u api.NodeUpdate
	if err := decodeBody(r, &u); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.UpdateNode(r.Context(), r.PathValue("ref"), u)
}

func (s *Server) removeNode(r *http.Request) (any, error) {
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return struct{}{}, w.RemoveNode(r.Context(), r.PathValue("ref"), r.URL.Query().Get("force") != "")
}

func (s *Server) createNetwork(r *http.Request) (any, error) {
	var req api.NetworkCreate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	// A write another manager forwards (over TLS) is the swarm's.
	if isBridge(req) && r.TLS == nil {
		return s.createLocalNetwork(req)
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.CreateNetwork(r.Context(), req)
}

func (s *Server) removeNetwork(r *http.Request) (any, error) {
	if s.cfg.Containers != nil {
		if found, err := s.cfg.Containers.RemoveNetwork(r.PathValue("ref")); found {
			return struct{}{}, err
		}
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	id, _ := s.cfg.Node.Objects().NetworkID(r.PathValue("ref"))
	if err := w.RemoveNetwork(r.Context(), r.PathValue("ref")); err != nil {
		return nil, err
	}
	// As docker's: when the command returns, the network is gone from
	// this node (ns ls, ip netns); the others follow within a second.
	ctx, cancel := context.WithTimeout(r.Context(), networkGoneWait)
	defer cancel()
	for id != "" && s.cfg.Node.NetworkBuilt(id) {
		select {
		case <-ctx.Done():
			return struct{}{}, nil // removed from the cluster; this node is late
		case <-time.After(20 * time.Millisecond):
		}
	}
	return struct{}{}, nil
}

// networkGoneWait bounds how long network rm waits for this node to take
// the network down.
const networkGoneWait = 5 * time.Second

func (s *Server) createService(r *http.Request) (any, error) {
	var req api.ServiceCreate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.CreateService(r.Context(), req)
}

func (s *Server) scaleService(r *http.Request) (any, error) {
	var req api.ServiceScale
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.ScaleService(r.Context(), r.PathValue("ref"), req.Replicas)
}

func (s *Server) updateService(r *http.Request) (any, error) {
	var req api.ServiceUpdate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.UpdateService(r.Context(), r.PathValue("ref"), req)
}

func (s *Server) rollbackService(r *http.Request) (any, error) {
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return w.RollbackService(r.Context(), r.PathValue("ref"))
}

func (s *Server) removeService(r *http.Request) (any, error) {
	w, err := s.cfg.Node.Control()
	if err != nil {
		return nil, err
	}
	return struct{}{}, w.RemoveService(r.Context(), r.PathValue("ref"))
}
