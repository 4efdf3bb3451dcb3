package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// initCluster makes this node the manager of a new cluster.
func (d *Daemon) initCluster(ctx context.Context) error {
	if err := d.ensureNodeID(); err != nil {
		return err
	}
	token := d.cfg.Token
	if token == "" {
		var err error
		if token, err = NewToken(); err != nil {
			return err
		}
	}
	clusterID, err := newID()
	if err != nil {
		return err
	}
	store, err := OpenStore(d.path(stateName))
	if err != nil {
		return err
	}
	d.id = identity{ID: d.id.ID, ClusterID: clusterID, Role: api.RoleManager,
		ManagerAddr: d.managerAPIAddr(), Token: token}
	if err := d.startManager(ctx, store); err != nil {
		return err
	}
	// Persist last: a node that failed to start leaves no cluster behind.
	_, err = store.Update(func(s *State) error {
		s.ClusterID, s.Token, s.ManagerID = clusterID, token, d.id.ID
		s.Nodes[d.id.ID] = d.selfRecord(time.Now().UTC())
		if err := addIngress(s, time.Now().UTC()); err != nil {
			return err
		}
		return ensureLBAddrs(s)
	})
	if err != nil {
		return err
	}
	if err := d.saveIdentity(); err != nil {
		return err
	}
	d.log.Info("cluster initialized: this node is now the manager",
		"node_id", d.id.ID, "cluster_id", clusterID,
		"join_command", d.joinCommand())
	return nil
}

// restartManager brings a manager back from its state file and rejoins
// the nodes it knew.
func (d *Daemon) restartManager(ctx context.Context) error {
	store, err := OpenStore(d.path(stateName))
	if err != nil {
		return err
	}
	st := store.Snapshot()
	if st.ManagerID == "" || st.Token == "" {
		return fmt.Errorf("state %s has no cluster; remove it to start a new one", d.path(stateName))
	}
	d.id = identity{ID: st.ManagerID, ClusterID: st.ClusterID, Role: api.RoleManager,
		ManagerAddr: d.managerAPIAddr(), Token: st.Token}
	if err := d.startManager(ctx, store); err != nil {
		return err
	}
	if err := d.saveIdentity(); err != nil {
		return err
	}
	var peers []string
	for id, n := range st.Nodes {
		if id != d.id.ID && n.Addr != "" {
			peers = append(peers, net.JoinHostPort(n.Addr, strconv.Itoa(d.cfg.GossipPort)))
		}
	}
	if len(peers) > 0 {
		if n, err := d.db.Join(peers); err != nil {
			d.log.Warn("rejoin known nodes", "reached", n, "of", len(peers), "err", err)
		}
	}
	d.log.Info("manager restarted from state", "cluster_id", st.ClusterID, "nodes", len(st.Nodes))
	return nil
}

// startManager starts gossip and the cluster API for a manager.
func (d *Daemon) startManager(ctx context.Context, store *Store) error {
	d.store = store
	if err := d.startGossip(d.id.Token); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.cfg.ListenAddr.String())
	if err != nil {
		return fmt.Errorf("listen for the cluster api on %s: %w", d.cfg.ListenAddr, err)
	}
	srv := &http.Server{Handler: d.clusterHandler(), ReadHeaderTimeout: 10 * time.Second}
	d.goServe(ctx, srv, ln, "cluster api")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.manageNodes(ctx)
	}()
	return nil
}

// managerAPIAddr is where other nodes reach this manager's cluster API.
func (d *Daemon) managerAPIAddr() string {
	return net.JoinHostPort(d.cfg.AdvertiseAddr.String(), strconv.Itoa(int(d.cfg.ListenAddr.Port())))
}

func (d *Daemon) joinCommand() string {
	join := d.managerAPIAddr()
	if d.cfg.ListenAddr.Port() == DefaultAPIPort {
		join = d.cfg.AdvertiseAddr.String()
	}
	return fmt.Sprintf("meshd --advertise-addr <ITS-ADDRESS> --join %s --token %s", join, d.id.Token)
}

// joinCluster asks the manager at addr to admit this node, then gossips.
// The token is checked before anything is started, so a refused node
// leaves nothing behind.
func (d *Daemon) joinCluster(ctx context.Context, addr, token string) error {
	if err := d.ensureNodeID(); err != nil {
		return err
	}
	d.id.Role = api.RoleWorker
	req := api.JoinRequest{ID: d.id.ID, Hostname: d.cfg.NodeName, Addr: d.cfg.AdvertiseAddr.String(),
		AddrPrefix: addrPrefix(d.cfg.AdvertiseAddr), GossipPort: d.cfg.GossipPort,
		DataPlane: string(d.dataPlane), Version: Version}
	var resp api.JoinResponse
	if err := d.callManagerRetrying(ctx, addr, token, req, &resp); err != nil {
		return err
	}
	if d.id.ClusterID != "" && d.id.ClusterID != resp.ClusterID {
		d.log.Warn("joining another cluster than the one recorded", "old", d.id.ClusterID, "new", resp.ClusterID)
	}
	d.id.ClusterID, d.id.ManagerAddr, d.id.Token = resp.ClusterID, addr, token
	if err := d.startGossip(token); err != nil {
		return err
	}
	if _, err := d.db.Join(resp.GossipAddrs); err != nil {
		return fmt.Errorf("gossip with %v: %w", resp.GossipAddrs, err)
	}
	if err := d.saveIdentity(); err != nil {
		return err
	}
	d.log.Info("joined cluster", "cluster_id", resp.ClusterID, "manager", addr, "node_id", d.id.ID)
	return nil
}

// callManagerRetrying posts a join, retrying while the manager cannot be
// reached (it may still be starting) and failing at once when it refuses.
func (d *Daemon) callManagerRetrying(ctx context.Context, addr, token string, in, out any) error {
	deadline := time.Now().Add(d.cfg.JoinTimeout)
	for {
		err := callCluster(ctx, addr, token, http.MethodPost, "/v1/cluster/join", in, out)
		var netErr net.Error
		var opErr *net.OpError
		retryable := errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout())
		if err == nil || !retryable {
			if err != nil {
				return fmt.Errorf("join refused by %s: %w", addr, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("join %s: manager unreachable for %s: %w", addr, d.cfg.JoinTimeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w", addr, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// callCluster sends one signed request to a manager's cluster API.
func callCluster(ctx context.Context, addr, token, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	resp, err := sendSigned(ctx, addr, token, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return api.DecodeResponse(resp, out)
}

var clusterHTTP = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}}

func sendSigned(ctx context.Context, addr, token, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	signRequest(req, token, body, time.Now())
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			return nil, ue.Unwrap()
		}
		return nil, err
	}
	return resp, nil
}

// forward relays a write received on the local socket to the manager and
// copies its answer back.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, invalid("read request: %v", err))
		return
	}
	resp, err := sendSigned(r.Context(), d.id.ManagerAddr, d.id.Token, r.Method, r.URL.RequestURI(), body)
	if err != nil {
		writeError(w, &apiError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("forward to manager %s: %v", d.id.ManagerAddr, err)})
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
