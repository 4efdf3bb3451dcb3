package mesh

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// localHandler serves the unix socket: reads are answered here, writes go
// to the manager (handled in place when this node is the manager).
func (d *Daemon) localHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", d.handleInfo)
	mux.HandleFunc("GET /v1/nodes", d.handleNodes)
	mux.HandleFunc("GET /v1/nodes/{ref}", d.handleNode)
	mux.HandleFunc("GET /v1/swarm/join-token", d.handleJoinToken)
	d.objectRoutes(mux)
	mux.HandleFunc("GET /v1/namespaces", d.handleNamespaces)
	mux.HandleFunc("GET /v1/lb", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.agent.lbTables())
	})
	d.writeRoutes(mux, d.managerOrForward)
	return mux
}

// clusterHandler serves the cluster port: every request must carry the
// token's signature, and only a manager answers it.
func (d *Daemon) clusterHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/cluster/join", d.handleJoin)
	d.writeRoutes(mux, func(h http.HandlerFunc) http.HandlerFunc { return h })
	return d.requireSignature(mux)
}

// writeRoutes registers every write, wrapped by wrap. Listing them once
// keeps the local socket and the cluster port in step.
func (d *Daemon) writeRoutes(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("POST /v1/nodes/{ref}/update", wrap(d.handleNodeUpdate))
	mux.HandleFunc("DELETE /v1/nodes/{ref}", wrap(d.handleNodeRemove))
	d.objectWrites(mux, wrap)
}

func (d *Daemon) managerOrForward(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d.isManager() {
			h(w, r)
			return
		}
		d.forward(w, r)
	}
}

func (d *Daemon) requireSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			writeError(w, invalid("read request: %v", err))
			return
		}
		if err := verifyRequest(r, d.id.Token, body, time.Now()); err != nil {
			d.log.Warn("refused cluster request", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			writeError(w, unauthorized("%v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return invalid("decode request: %v", err)
	}
	return nil
}

func (d *Daemon) handleInfo(w http.ResponseWriter, r *http.Request) {
	nodes := d.nodeView()
	ready := 0
	for _, n := range nodes {
		if n.Status == api.StatusReady {
			ready++
		}
	}
	writeJSON(w, http.StatusOK, api.Info{NodeID: d.id.ID, NodeName: d.cfg.NodeName,
		NodeAddr: d.cfg.AdvertiseAddr.String(), Role: d.id.Role, ClusterID: d.id.ClusterID,
		ManagerAddr: d.id.ManagerAddr, RunDir: d.cfg.RunDir, DataPlane: string(d.dataPlane), Version: Version,
		Nodes: len(nodes), NodesReady: ready})
}

func (d *Daemon) handleNodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.nodeView())
}

func (d *Daemon) handleNode(w http.ResponseWriter, r *http.Request) {
	n, err := findNode(d.nodeView(), r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (d *Daemon) handleJoinToken(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.JoinToken{Token: d.id.Token, ManagerAddr: d.id.ManagerAddr})
}

// handleJoin admits a node: it is recorded at once, so node ls shows it
// even before gossip has spread its arrival.
func (d *Daemon) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.ID == "" || req.Hostname == "" || net.ParseIP(req.Addr) == nil || req.GossipPort <= 0 || req.GossipPort > 65535 {
		writeError(w, invalid("join request needs ID, Hostname, Addr and GossipPort"))
		return
	}
	if req.ID == d.id.ID {
		writeError(w, conflict("node ID %s is the manager's own", req.ID))
		return
	}
	if err := d.recordNode(req.ID, nodeMeta{Name: req.Hostname, Role: api.RoleWorker, Addr: req.Addr,
		DataPlane: req.DataPlane, Version: req.Version, Prefix: req.AddrPrefix}); err != nil {
		writeError(w, err)
		return
	}
	d.log.Info("node joined", "joiner", req.Hostname, "joiner_id", req.ID, "addr", req.Addr)
	resp := api.JoinResponse{ClusterID: d.id.ClusterID, ManagerID: d.id.ID, ManagerAddr: d.id.ManagerAddr}
	for _, m := range d.db.Members() {
		if reachable(m.State) {
			resp.GossipAddrs = append(resp.GossipAddrs, net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)))
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (d *Daemon) handleNodeUpdate(w http.ResponseWriter, r *http.Request) {
	var u api.NodeUpdate
	if err := decodeBody(r, &u); err != nil {
		writeError(w, err)
		return
	}
	n, err := d.updateNode(r.PathValue("ref"), u)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (d *Daemon) handleNodeRemove(w http.ResponseWriter, r *http.Request) {
	if err := d.removeNode(r.PathValue("ref"), r.URL.Query().Get("force") != ""); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
