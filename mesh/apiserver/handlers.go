package apiserver

import (
	"net/http"
	"path/filepath"
	"slices"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
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

func (s *Server) nodes(*http.Request) (any, error) { return s.cfg.Node.Nodes(), nil }

func (s *Server) node(r *http.Request) (any, error) {
	return records.FindNode(s.cfg.Node.Nodes(), r.PathValue("ref"))
}

func (s *Server) joinToken(*http.Request) (any, error) { return s.cfg.Node.JoinToken(), nil }

func (s *Server) networks(*http.Request) (any, error) {
	return s.cfg.Node.Objects().NetworksByName(), nil
}

func (s *Server) network(r *http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	id, err := st.NetworkID(r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	n := st.Networks[id]
	n.Endpoints = networkEndpoints(st, id)
	return n, nil
}

func (s *Server) services(*http.Request) (any, error) {
	return serviceView(s.cfg.Node.Objects(), s.cfg.Node.TaskStatuses()), nil
}

func (s *Server) service(r *http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	id, err := st.ServiceID(r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	for _, svc := range serviceView(st, s.cfg.Node.TaskStatuses()) {
		if svc.ID == id {
			return svc, nil
		}
	}
	return nil, api.NotFound("service %s not found", r.PathValue("ref"))
}

func (s *Server) tasks(r *http.Request) (any, error) {
	st := s.cfg.Node.Objects()
	tasks := taskView(st, s.cfg.Node.TaskStatuses())
	if ref := r.URL.Query().Get("service"); ref != "" {
		id, err := st.ServiceID(ref)
		if err != nil {
			return nil, err
		}
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.ServiceID != id })
	}
	if node := r.URL.Query().Get("node"); node != "" {
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.NodeID != node && t.NodeName != node })
	}
	return tasks, nil
}

func (s *Server) task(r *http.Request) (any, error) {
	tasks := map[string]api.Task{}
	for _, t := range taskView(s.cfg.Node.Objects(), s.cfg.Node.TaskStatuses()) {
		tasks[t.ID] = t
	}
	id, err := records.Resolve("task", tasks, api.Task.Name, r.PathValue("ref"))
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

// Writes.

func (s *Server) join(r *http.Request) (any, error) {
	if s.cfg.Joiner == nil {
		return nil, api.Errorf(http.StatusServiceUnavailable, "this node does not admit joins")
	}
	var req api.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Joiner.Join(r.Context(), req)
}

func (s *Server) updateNode(r *http.Request) (any, error) {
	var u api.NodeUpdate
	if err := decodeBody(r, &u); err != nil {
		return nil, err
	}
	return s.cfg.Writes.UpdateNode(r.Context(), r.PathValue("ref"), u)
}

func (s *Server) removeNode(r *http.Request) (any, error) {
	return struct{}{}, s.cfg.Writes.RemoveNode(r.Context(), r.PathValue("ref"), r.URL.Query().Get("force") != "")
}

func (s *Server) createNetwork(r *http.Request) (any, error) {
	var req api.NetworkCreate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Writes.CreateNetwork(r.Context(), req)
}

func (s *Server) removeNetwork(r *http.Request) (any, error) {
	return struct{}{}, s.cfg.Writes.RemoveNetwork(r.Context(), r.PathValue("ref"))
}

func (s *Server) createService(r *http.Request) (any, error) {
	var req api.ServiceCreate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Writes.CreateService(r.Context(), req)
}

func (s *Server) scaleService(r *http.Request) (any, error) {
	var req api.ServiceScale
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.cfg.Writes.ScaleService(r.Context(), r.PathValue("ref"), req.Replicas)
}

func (s *Server) removeService(r *http.Request) (any, error) {
	return struct{}{}, s.cfg.Writes.RemoveService(r.Context(), r.PathValue("ref"))
}
