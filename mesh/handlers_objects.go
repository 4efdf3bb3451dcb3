package mesh

import (
	"net/http"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// objectRoutes registers the reads of networks, services and tasks.
func (d *Daemon) objectRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.networkView(d.objects(), false))
	})
	mux.HandleFunc("GET /v1/networks/{ref}", d.handleNetwork)
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.serviceView(d.objects()))
	})
	mux.HandleFunc("GET /v1/services/{ref}", d.handleService)
	mux.HandleFunc("GET /v1/tasks", d.handleTasks)
	mux.HandleFunc("GET /v1/tasks/{ref}", d.handleTask)
}

// objectWrites registers the writes of networks and services.
func (d *Daemon) objectWrites(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("POST /v1/networks", wrap(func(w http.ResponseWriter, r *http.Request) {
		var req api.NetworkCreate
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		n, err := d.createNetwork(req)
		answer(w, n, err)
	}))
	mux.HandleFunc("DELETE /v1/networks/{ref}", wrap(func(w http.ResponseWriter, r *http.Request) {
		answer(w, struct{}{}, d.removeNetwork(r.PathValue("ref")))
	}))
	mux.HandleFunc("POST /v1/services", wrap(func(w http.ResponseWriter, r *http.Request) {
		var req api.ServiceCreate
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		s, err := d.createService(req)
		answer(w, s, err)
	}))
	mux.HandleFunc("POST /v1/services/{ref}/scale", wrap(func(w http.ResponseWriter, r *http.Request) {
		var req api.ServiceScale
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
		s, err := d.scaleService(r.PathValue("ref"), req.Replicas)
		answer(w, s, err)
	}))
	mux.HandleFunc("DELETE /v1/services/{ref}", wrap(func(w http.ResponseWriter, r *http.Request) {
		answer(w, struct{}{}, d.removeService(r.PathValue("ref")))
	}))
}

func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *Daemon) handleNetwork(w http.ResponseWriter, r *http.Request) {
	st := d.objects()
	id, err := resolve("network", st.Networks, networkName, r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	n := st.Networks[id]
	n.Endpoints = networkEndpoints(st, id)
	writeJSON(w, http.StatusOK, n)
}

// serviceView returns services sorted by name with their running count.
func (d *Daemon) serviceView(st State) []api.Service {
	statuses := d.taskStatuses()
	out := make([]api.Service, 0, len(st.Services))
	for _, s := range st.Services {
		s.Running = 0
		for _, t := range st.Tasks {
			if t.ServiceID == s.ID && statuses[t.ID].State == api.TaskRunning {
				s.Running++
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b api.Service) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (d *Daemon) handleService(w http.ResponseWriter, r *http.Request) {
	st := d.objects()
	id, err := resolve("service", st.Services, serviceName, r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	for _, s := range d.serviceView(st) {
		if s.ID == id {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, notFound("service %s not found", r.PathValue("ref")))
}

// taskView returns tasks with their reported status and node name,
// sorted by service, then slot.
func (d *Daemon) taskView(st State) []api.Task {
	statuses := d.taskStatuses()
	out := make([]api.Task, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		t.Status = statuses[t.ID]
		if t.Status.State == "" {
			t.Status.State = api.TaskAssigned
		}
		t.NodeName = st.Nodes[t.NodeID].Hostname
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b api.Task) int {
		if c := strings.Compare(a.ServiceName, b.ServiceName); c != 0 {
			return c
		}
		return a.Slot - b.Slot
	})
	return out
}

func (d *Daemon) handleTasks(w http.ResponseWriter, r *http.Request) {
	st := d.objects()
	tasks := d.taskView(st)
	if ref := r.URL.Query().Get("service"); ref != "" {
		id, err := resolve("service", st.Services, serviceName, ref)
		if err != nil {
			writeError(w, err)
			return
		}
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.ServiceID != id })
	}
	if node := r.URL.Query().Get("node"); node != "" {
		tasks = slices.DeleteFunc(tasks, func(t api.Task) bool { return t.NodeID != node && t.NodeName != node })
	}
	writeJSON(w, http.StatusOK, tasks)
}

func (d *Daemon) handleTask(w http.ResponseWriter, r *http.Request) {
	tasks := map[string]api.Task{}
	for _, t := range d.taskView(d.objects()) {
		tasks[t.ID] = t
	}
	id, err := resolve("task", tasks, func(t api.Task) string { return t.Name() }, r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tasks[id])
}
