package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// swarmOps are swarm init, join and leave, for the API server.
type swarmOps struct{ d *Daemon }

func (o swarmOps) Init(ctx context.Context, req api.SwarmInit) (api.SwarmInitResponse, error) {
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	return o.d.initLocked(o.d.runCtx, req)
}

func (o swarmOps) Join(ctx context.Context, req api.SwarmJoin) (api.SwarmJoinResponse, error) {
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	return o.d.joinLocked(o.d.runCtx, req)
}

func (o swarmOps) Leave(ctx context.Context, req api.SwarmLeave) error {
	o.d.mu.Lock()
	defer o.d.mu.Unlock()
	return o.d.leaveLocked(req)
}

// chooseAdvertise applies swarm init's or join's --advertise-addr: an
// address of this node, with the cluster API's port if one is given.
func (d *Daemon) chooseAdvertise(s string) error {
	if s == "" {
		d.id.AdvertiseAddr = d.cfg.AdvertiseAddr.String()
		return nil
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if port != strconv.Itoa(int(d.cfg.ListenAddr.Port())) {
			return api.Invalid("--advertise-addr %s: the port must be the cluster API's, %d (meshd --listen-addr)", s, d.cfg.ListenAddr.Port())
		}
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return api.Invalid("--advertise-addr %q: want an IPv4 address of this node", s)
	}
	if p := addrPrefix(a); p.Bits() == 32 && a != d.cfg.AdvertiseAddr {
		return api.Invalid("--advertise-addr %s: no interface of this node has that address", a)
	}
	d.id.AdvertiseAddr = a.String()
	return nil
}

// initLocked makes this node the first manager of a new cluster.
func (d *Daemon) initLocked(ctx context.Context, req api.SwarmInit) (api.SwarmInitResponse, error) {
	if d.sess != nil || d.id.ClusterID != "" {
		return api.SwarmInitResponse{}, api.ErrAlreadyInSwarm
	}
	if req.ForceNewCluster {
		return api.SwarmInitResponse{}, api.Invalid("--force-new-cluster is not supported")
	}
	saved := d.id
	fail := func(err error) (api.SwarmInitResponse, error) {
		d.stopSessionLocked(false)
		_ = os.RemoveAll(d.path(raftDirName))
		d.id = saved
		return api.SwarmInitResponse{}, err
	}
	if err := d.chooseAdvertise(req.AdvertiseAddr); err != nil {
		return fail(err)
	}
	if d.id.ID == "" {
		d.id.ID = api.NewID()
	}
	now := time.Now().UTC()
	a := d.advertise()
	self := api.Node{ID: d.id.ID, Hostname: d.cfg.NodeName, Role: api.RoleManager, Availability: api.AvailabilityActive,
		Status: api.StatusReady, Addr: a.String(), AddrPrefix: addrPrefix(a).String(), APIAddr: d.apiAddr(),
		DataPlane: string(d.dataPlane), Version: api.Version, CreatedAt: now, UpdatedAt: now}
	st, err := manager.NewCluster(self, req.CertExpiry, now)
	if err != nil {
		return fail(err)
	}
	if err := d.certifySelfLocked(&st, now); err != nil {
		return fail(err)
	}
	d.id.Managers = []string{d.apiAddr()}
	if err := d.bootstrapLocked(ctx, st); err != nil {
		return fail(err)
	}
	// Persist last: a node that failed to start leaves no cluster behind.
	if err := d.saveIdentityLocked(); err != nil {
		return fail(err)
	}
	d.log.Info("swarm initialized: this node is now a manager", "node_id", d.id.ID, "cluster_id", st.ClusterID,
		"join_with", "meshctl swarm join-token worker")
	return api.SwarmInitResponse{NodeID: d.id.ID, ClusterID: st.ClusterID, WorkerToken: st.WorkerToken, ManagerAddr: d.apiAddr()}, nil
}

// certifySelfLocked gives the first manager its key and certificate from
// the new state's CA, and the cluster's trust.
func (d *Daemon) certifySelfLocked(st *manager.State, now time.Time) error {
	root, err := st.Root()
	if err != nil {
		return err
	}
	key, cert, err := root.NewNode(d.id.ID, api.RoleManager, st.ClusterID, st.CertExpiry, now)
	if err != nil {
		return err
	}
	st.Trusted[d.id.ID] = st.Trust()
	d.id.ClusterID, d.id.Role, d.id.Key, d.id.Cert = st.ClusterID, api.RoleManager, key, cert
	d.id.CACerts, d.id.GossipKeys, d.id.Trust = st.CACerts, st.GossipKeys, st.Trust()
	return nil
}

// bootstrapLocked starts a session whose manager is the only voter of a
// cluster whose first state is st.
func (d *Daemon) bootstrapLocked(ctx context.Context, st manager.State) error {
	d.id.Role = api.RoleManager
	if err := d.startSessionLocked(ctx); err != nil {
		return err
	}
	return d.sess.mgr.store.Bootstrap(d.apiAddr(), st)
}

// joinLocked joins the cluster of the manager at req.RemoteAddr with the
// role the token gives.
func (d *Daemon) joinLocked(ctx context.Context, req api.SwarmJoin) (api.SwarmJoinResponse, error) {
	if d.sess != nil || d.id.ClusterID != "" {
		return api.SwarmJoinResponse{}, api.ErrAlreadyInSwarm
	}
	digest, _, err := api.ParseJoinToken(req.Token)
	if err != nil {
		return api.SwarmJoinResponse{}, api.Invalid("%v", err)
	}
	remote, err := hostPort(req.RemoteAddr, api.DefaultAPIPort)
	if err != nil {
		return api.SwarmJoinResponse{}, api.Invalid("%v", err)
	}
	saved := d.id
	fail := func(err error) (api.SwarmJoinResponse, error) {
		d.stopSessionLocked(false)
		_ = os.RemoveAll(d.path(raftDirName))
		d.id = saved
		return api.SwarmJoinResponse{}, err
	}
	if err := d.chooseAdvertise(req.AdvertiseAddr); err != nil {
		return fail(err)
	}
	if d.id.ID == "" {
		d.id.ID = api.NewID()
	}
	key, csr, err := ca.NewKey(d.id.ID)
	if err != nil {
		return fail(err)
	}
	a := d.advertise()
	jr := api.JoinRequest{Token: req.Token, ID: d.id.ID, Hostname: d.cfg.NodeName, Addr: a.String(), AddrPrefix: addrPrefix(a).String(),
		GossipPort: d.cfg.GossipPort, APIAddr: d.apiAddr(), DataPlane: string(d.dataPlane), Version: api.Version, CSR: csr}
	resp, err := d.joinRetrying(ctx, remote, digest, jr)
	if err != nil {
		return fail(err)
	}
	if len(resp.GossipKeys) == 0 || len(resp.GossipKeys[0]) != 32 {
		return fail(fmt.Errorf("join %s: the manager's answer carries no usable gossip key", remote))
	}
	d.id.ClusterID, d.id.Role, d.id.Key, d.id.Cert = resp.ClusterID, resp.Role, key, resp.Cert
	d.id.CACerts, d.id.GossipKeys, d.id.Trust = resp.CACerts, resp.GossipKeys, ca.Trust(resp.CACerts, resp.GossipKeys)
	d.id.Managers, d.id.Peers = resp.Managers, resp.GossipAddrs
	if err := d.startSessionLocked(ctx); err != nil {
		return fail(err)
	}
	if _, err := d.sess.db.Join(resp.GossipAddrs); err != nil {
		return fail(fmt.Errorf("gossip with %v: %w", resp.GossipAddrs, err))
	}
	if err := d.saveIdentityLocked(); err != nil {
		return fail(err)
	}
	if resp.Role == api.RoleManager {
		d.waitVoterLocked(ctx)
	}
	d.log.Info("joined the swarm", "cluster_id", resp.ClusterID, "manager", remote, "node_id", d.id.ID, "role", resp.Role)
	return api.SwarmJoinResponse{NodeID: d.id.ID, Role: resp.Role}, nil
}

// joinRetrying posts a join, retrying while the manager cannot be reached
// (it may still be starting) and failing at once when it refuses.
// The manager's certificate is checked against the CA the token names
// before the token is sent.
func (d *Daemon) joinRetrying(ctx context.Context, addr, digest string, req api.JoinRequest) (api.JoinResponse, error) {
	deadline := time.Now().Add(d.cfg.JoinTimeout)
	client := api.NewClusterClient(addr, ca.PinnedConfig(digest))
	for {
		resp, err := client.Join(ctx, req)
		if err == nil {
			return resp, nil
		}
		if errors.Is(err, ca.ErrWrongCA) {
			return resp, api.Errorf(http.StatusBadRequest, "join %s: %v", addr, ca.ErrWrongCA)
		}
		var se *api.StatusError
		if errors.As(err, &se) {
			if se.Code == http.StatusUnauthorized {
				return resp, api.Errorf(http.StatusBadRequest, "join %s: the manager refused the token", addr)
			}
			return resp, api.Errorf(se.Code, "join %s: %s", addr, se.Msg)
		}
		if time.Now().After(deadline) {
			return resp, api.Errorf(http.StatusBadGateway, "join %s: manager unreachable for %s: %v", addr, d.cfg.JoinTimeout, err)
		}
		select {
		case <-ctx.Done():
			return resp, fmt.Errorf("join %s: %w", addr, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// leaveLocked takes the node out of its cluster: its tasks stop, its
// namespaces go, and the run dir forgets the cluster.
func (d *Daemon) leaveLocked(req api.SwarmLeave) error {
	if d.sess == nil && d.id.ClusterID == "" {
		return api.Errorf(http.StatusServiceUnavailable, "This node is not part of a swarm")
	}
	if d.id.Role == api.RoleManager && !req.Force {
		return api.Errorf(http.StatusServiceUnavailable, "You are attempting to leave the swarm on a node that is participating as a manager. "+
			"Removing this node leaves the remaining managers to keep a quorum. Use `--force` to ignore this message.")
	}
	d.stopSessionLocked(true)
	for _, name := range []string{raftDirName, desiredName} {
		if err := os.RemoveAll(d.path(name)); err != nil {
			return fmt.Errorf("leave: remove %s: %w", name, err)
		}
	}
	d.id = identity{ID: d.id.ID}
	if err := d.saveIdentityLocked(); err != nil {
		return err
	}
	d.log.Info("left the swarm")
	return nil
}

// legacyToState reads a single manager's state file, written before the
// managers were replicated, as the first state of a one-manager raft
// cluster: same IDs and allocations, the old token's
// gossip key (the one the workers already speak, derived from the old
// token), a new root CA and new join tokens. It returns the manager's node
// ID.
func legacyToState(data []byte, apiAddr string, now time.Time) (manager.State, string, error) {
	var old struct {
		ClusterID string `json:"ClusterID"`
		Token     string `json:"Token"`
		ManagerID string `json:"ManagerID"`
		records.Objects
		IPAM *ipam.Allocator `json:"IPAM"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return manager.State{}, "", fmt.Errorf("decode: %w", err)
	}
	if old.ManagerID == "" || old.Token == "" || old.ClusterID == "" {
		return manager.State{}, "", errors.New("it has no cluster; remove it to start afresh")
	}
	root, err := ca.NewRoot(old.ClusterID, now)
	if err != nil {
		return manager.State{}, "", err
	}
	st := manager.State{ClusterID: old.ClusterID, WorkerToken: api.NewJoinToken(root.Digest()),
		ManagerToken: api.NewJoinToken(root.Digest()), CACerts: [][]byte{root.CertDER}, CAKey: root.KeyDER,
		CertExpiry: ca.DefaultCertExpiry, GossipKeys: [][]byte{GossipKey(old.Token)}, GossipRotatedAt: now,
		Objects: old.Objects, IPAM: old.IPAM, Trusted: map[string]string{}}
	st.Objects.Init()
	self := st.Nodes[old.ManagerID]
	self.ID, self.Role, self.APIAddr = old.ManagerID, api.RoleManager, apiAddr
	st.Nodes[old.ManagerID] = self
	return st, old.ManagerID, nil
}

// migrateLocked turns a single manager's state file, written before the
// managers were replicated, into the first state of a one-manager raft
// cluster with the same IDs and allocations. The workers keep their gossip
// key (derived from the old token, which stays the worker token).
func (d *Daemon) migrateLocked(ctx context.Context) error {
	if _, err := os.Stat(d.path(raftDirName)); err == nil {
		return fmt.Errorf("migrate %s: %s exists too; remove one of them", d.path(legacyState), d.path(raftDirName))
	}
	data, err := os.ReadFile(d.path(legacyState))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	now := time.Now().UTC()
	st, managerID, err := legacyToState(data, d.apiAddr(), now)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", d.path(legacyState), err)
	}
	d.id = identity{ID: managerID, AdvertiseAddr: d.cfg.AdvertiseAddr.String(), Managers: []string{d.apiAddr()}}
	if err := d.certifySelfLocked(&st, now); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for id, n := range st.Nodes {
		if id != managerID && n.Addr != "" {
			d.id.Peers = append(d.id.Peers, net.JoinHostPort(n.Addr, strconv.Itoa(d.cfg.GossipPort)))
		}
	}
	if err := d.bootstrapLocked(ctx, st); err != nil {
		d.stopSessionLocked(false)
		_ = os.RemoveAll(d.path(raftDirName))
		return fmt.Errorf("migrate to raft: %w", err)
	}
	if err := d.saveIdentityLocked(); err != nil {
		return err
	}
	if err := os.Rename(d.path(legacyState), d.path(legacyState+".migrated")); err != nil {
		return fmt.Errorf("migrate: keep the old state aside: %w", err)
	}
	d.log.Info("state migrated to a one-manager raft cluster", "cluster_id", st.ClusterID, "nodes", len(st.Nodes))
	return nil
}

// waitVoterLocked waits, as docker's swarm join does for a manager, until
// the leader has made this manager a raft voter and its replica has caught
// up, so that it counts in the quorum when the join returns. The leader
// keeps trying past the wait; a manager still waiting is only logged.
func (d *Daemon) waitVoterLocked(ctx context.Context) {
	store := d.sess.mgr.store
	ctx, cancel := context.WithTimeout(ctx, 2*d.cfg.JoinTimeout)
	defer cancel()
	for {
		servers, _ := store.Servers()
		for _, sv := range servers {
			if sv.ID == d.id.ID && sv.Voter && store.Version() > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			d.log.Warn("joined, but not a raft voter yet: the leader adds it when it can reach this node's cluster port", "wait", 2*d.cfg.JoinTimeout)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
