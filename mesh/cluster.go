package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/atomicfile"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/apiserver"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// start decides what this node is (a new cluster's manager, a restarted
// manager, a joining or rejoining worker), brings gossip up accordingly,
// and returns the API server wired for that role.
func (d *Daemon) start(ctx context.Context) (*apiserver.Server, error) {
	if _, err := atomicfile.ReadJSON(d.path(identityName), &d.id); err != nil {
		return nil, err
	}
	_, statErr := os.Stat(d.path(stateName))
	isManager := statErr == nil
	var err error
	switch {
	case isManager && d.cfg.Join != "":
		err = fmt.Errorf("this node manages cluster %s (state in %s); it cannot join another", d.id.ClusterID, d.cfg.RunDir)
	case isManager:
		err = d.restartManager()
	case d.cfg.Join != "":
		err = d.joinCluster(ctx, d.cfg.Join, d.cfg.Token)
	case d.id.Role == api.RoleWorker && d.id.ManagerAddr != "":
		d.log.Info("rejoining cluster", "manager", d.id.ManagerAddr)
		err = d.joinCluster(ctx, d.id.ManagerAddr, d.id.Token)
	default:
		err = d.initCluster()
	}
	if err != nil {
		return nil, err
	}
	srv, err := d.newServer()
	if err != nil {
		return nil, err
	}
	if d.mgr != nil {
		if err := d.startManager(ctx, srv); err != nil {
			return nil, err
		}
	}
	return srv, nil
}

// initCluster makes this node the manager of a new cluster.
func (d *Daemon) initCluster() error {
	if d.id.ID == "" {
		d.id.ID = api.NewID()
	}
	token := d.cfg.Token
	if token == "" {
		token = api.NewToken()
	}
	store, err := manager.OpenStore(d.path(stateName))
	if err != nil {
		return err
	}
	d.id = identity{ID: d.id.ID, ClusterID: api.NewID(), Role: api.RoleManager, ManagerAddr: d.managerAPIAddr(), Token: token}
	if err := d.newManager(store); err != nil {
		return err
	}
	// Persist last: a node that failed to start leaves no cluster behind.
	now := time.Now().UTC()
	m := d.meta()
	self := api.Node{ID: d.id.ID, Hostname: m.Name, Role: m.Role, Availability: api.AvailabilityActive,
		Status: api.StatusReady, Addr: m.Addr.String(), AddrPrefix: m.Prefix.String(), DataPlane: m.DataPlane,
		Version: m.Version, CreatedAt: now, UpdatedAt: now}
	if err := manager.Bootstrap(store, d.id.ClusterID, token, self); err != nil {
		return err
	}
	if err := d.saveIdentity(); err != nil {
		return err
	}
	d.log.Info("cluster initialized: this node is now the manager",
		"node_id", d.id.ID, "cluster_id", d.id.ClusterID, "join_command", d.joinCommand())
	return nil
}

// restartManager brings a manager back from its state file and rejoins
// the nodes it knew.
func (d *Daemon) restartManager() error {
	store, err := manager.OpenStore(d.path(stateName))
	if err != nil {
		return err
	}
	st := store.Snapshot()
	if st.ManagerID == "" || st.Token == "" {
		return fmt.Errorf("state %s has no cluster; remove it to start a new one", d.path(stateName))
	}
	d.id = identity{ID: st.ManagerID, ClusterID: st.ClusterID, Role: api.RoleManager,
		ManagerAddr: d.managerAPIAddr(), Token: st.Token}
	if err := d.newManager(store); err != nil {
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

// newManager starts gossip and makes the manager over store.
func (d *Daemon) newManager(store *manager.Store) error {
	if err := d.startGossip(d.id.Token); err != nil {
		return err
	}
	mgr, err := manager.New(manager.Config{Store: store, DB: d.db, NodeID: d.id.ID, APIAddr: d.managerAPIAddr(),
		Logger: d.log.With("component", "manager")})
	if err != nil {
		return err
	}
	d.mgr = mgr
	return nil
}

// startManager serves the cluster API and runs the manager's loop.
func (d *Daemon) startManager(ctx context.Context, srv *apiserver.Server) error {
	ln, err := net.Listen("tcp", d.cfg.ListenAddr.String())
	if err != nil {
		return fmt.Errorf("listen for the cluster api on %s: %w", d.cfg.ListenAddr, err)
	}
	d.goServe(ctx, &http.Server{Handler: srv.ClusterHandler(), ReadHeaderTimeout: 10 * time.Second}, ln, "cluster api")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.mgr.Run(ctx)
	}()
	return nil
}

// managerAPIAddr is where other nodes reach this manager's cluster API.
func (d *Daemon) managerAPIAddr() string {
	return net.JoinHostPort(d.cfg.AdvertiseAddr.String(), strconv.Itoa(int(d.cfg.ListenAddr.Port())))
}

func (d *Daemon) joinCommand() string {
	join := d.managerAPIAddr()
	if d.cfg.ListenAddr.Port() == api.DefaultAPIPort {
		join = d.cfg.AdvertiseAddr.String()
	}
	return fmt.Sprintf("meshd --advertise-addr <ITS-ADDRESS> --join %s --token %s", join, d.id.Token)
}

// joinCluster asks the manager at addr to admit this node, then gossips.
// The token is checked before anything is started, so a refused node
// leaves nothing behind.
func (d *Daemon) joinCluster(ctx context.Context, addr, token string) error {
	if d.id.ID == "" {
		d.id.ID = api.NewID()
	}
	d.id.Role = api.RoleWorker
	req := api.JoinRequest{ID: d.id.ID, Hostname: d.cfg.NodeName, Addr: d.cfg.AdvertiseAddr.String(),
		AddrPrefix: addrPrefix(d.cfg.AdvertiseAddr).String(), GossipPort: d.cfg.GossipPort,
		DataPlane: string(d.dataPlane), Version: api.Version}
	resp, err := d.joinRetrying(ctx, addr, token, req)
	if err != nil {
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

// joinRetrying posts a join, retrying while the manager cannot be reached
// (it may still be starting) and failing at once when it refuses.
func (d *Daemon) joinRetrying(ctx context.Context, addr, token string, req api.JoinRequest) (api.JoinResponse, error) {
	deadline := time.Now().Add(d.cfg.JoinTimeout)
	manager := apiserver.NewClusterClient(addr, token)
	for {
		resp, err := manager.Join(ctx, req)
		var netErr net.Error
		var opErr *net.OpError
		retryable := errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout())
		if err == nil {
			return resp, nil
		}
		if !retryable {
			return resp, fmt.Errorf("join refused by %s: %w", addr, err)
		}
		if time.Now().After(deadline) {
			return resp, fmt.Errorf("join %s: manager unreachable for %s: %w", addr, d.cfg.JoinTimeout, err)
		}
		select {
		case <-ctx.Done():
			return resp, fmt.Errorf("join %s: %w", addr, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// startGossip brings memberlist up with the key derived from the token.
func (d *Daemon) startGossip(token string) error {
	meta, err := records.EncodeMeta(d.meta())
	if err != nil {
		return err
	}
	gc := gossip.DefaultConfig()
	gc.Name = d.id.ID
	gc.BindAddr = d.cfg.ListenAddr.Addr().String()
	gc.BindPort = d.cfg.GossipPort
	gc.AdvertiseAddr = d.cfg.AdvertiseAddr.String()
	gc.AdvertisePort = d.cfg.GossipPort
	gc.SecretKey = GossipKey(token)
	gc.Meta = meta
	gc.Logger = d.log.With("component", "gossip")
	db, err := gossip.New(gc)
	if err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", gc.BindAddr, gc.BindPort, err)
	}
	d.db = db
	return nil
}

func (d *Daemon) stopGossip() {
	if d.db == nil {
		return
	}
	if err := d.db.Leave(2 * time.Second); err != nil {
		d.log.Warn("leave cluster", "err", err)
	}
	if err := d.db.Shutdown(); err != nil {
		d.log.Warn("stop gossip", "err", err)
	}
	d.db = nil
}
