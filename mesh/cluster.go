package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"crypto/tls"

	"github.com/meshd/meshd/gossip"
	"github.com/meshd/meshd/internal/portmux"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/agent"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

// session is this node's life in a cluster: gossip, the agent, and on a
// manager its raft replica and cluster port.
type session struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	db     *gossip.DB
	agent  *agent.Agent
	mgr    *managerRole // nil on a worker; changed under Daemon.mu
	// renewDue asks for a certificate renewal at the next check (at a
	// restart: keys may have rotated while the node was down); renewing
	// is set while one is in flight. renewDue is guarded by Daemon.mu.
	renewDue bool
	renewing atomic.Bool
}

// managerRole is what a manager runs besides the agent.
type managerRole struct {
	store  *manager.Store
	m      *manager.Manager
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// demotedAt is when this manager first saw itself demoted.
	demotedAt time.Time
}

// The cluster port's TLS handshakes: at most maxHandshakes under way at
// once (callers not yet authenticated), each within handshakeTimeout.
const (
	maxHandshakes    = 64
	handshakeTimeout = 5 * time.Second
)

// leaveRaftWithin bounds how long a demoted manager keeps its replica
// waiting for the leader to take it out of the raft configuration: going
// earlier could leave a two-voter configuration without a quorum to
// commit the removal.
const leaveRaftWithin = 10 * time.Second

// current returns the session and manager role, either nil.
func (d *Daemon) current() (*session, *managerRole) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.sess == nil {
		return nil, nil
	}
	return d.sess, d.sess.mgr
}

// startSessionLocked brings up gossip, the manager role if this node is a
// manager, and the agent, from the identity. Any failure stops what was
// started.
func (d *Daemon) startSessionLocked(ctx context.Context) error {
	if len(d.id.GossipKeys) == 0 && d.id.Token != "" {
		d.id.GossipKeys = [][]byte{GossipKey(d.id.Token)} // a node of a cluster made before raft
	}
	if d.id.Cert != nil {
		id, err := ca.NewIdentity(d.id.Cert, d.id.Key, d.id.CACerts)
		if err != nil {
			return fmt.Errorf("this node's certificate (%s): %w", d.path(identityName), err)
		}
		d.tls = id
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &session{cancel: cancel}
	var err error
	if s.db, err = d.startGossip(); err != nil {
		cancel()
		return err
	}
	d.sess = s
	d.gossip.Store(s.db)
	if d.id.Role == api.RoleManager {
		if err := d.startManagerLocked(); err != nil {
			d.stopSessionLocked(false)
			return err
		}
	}
	if s.agent, err = d.newAgent(s.db); err != nil {
		d.stopSessionLocked(false)
		return err
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.agent.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		d.watchRole(ctx, s)
	}()
	peers := slices.Clone(d.id.Peers)
	if d.id.ManagerAddr != "" { // before raft, a worker knew the manager only
		if host, _, err := net.SplitHostPort(d.id.ManagerAddr); err == nil {
			peers = append(peers, net.JoinHostPort(host, strconv.Itoa(d.cfg.GossipPort)))
		}
	}
	go d.rejoinGossip(ctx, s.db, peers)
	return nil
}

// rejoinGossip finds the cluster again after a restart from the members
// it last saw, without needing a manager, retrying until one answers.
func (d *Daemon) rejoinGossip(ctx context.Context, db *gossip.DB, peers []string) {
	self := net.JoinHostPort(d.advertise().String(), strconv.Itoa(d.cfg.GossipPort))
	peers = slices.DeleteFunc(peers, func(p string) bool { return p == self })
	if len(peers) == 0 {
		return
	}
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		if n, err := db.Join(peers); err == nil && n > 0 {
			d.log.Info("rejoined the cluster's gossip", "reached", n, "of", len(peers))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// stopSessionLocked stops the agent (and its tasks), the manager role and
// gossip. leave says the node leaves the cluster for good: gossip says
// goodbye and the run dir forgets the cluster.
func (d *Daemon) stopSessionLocked(leave bool) {
	s := d.sess
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait() // the agent stops its tasks before gossip goes
	d.stopManagerLocked()
	if leave {
		if err := s.db.Leave(2 * time.Second); err != nil {
			d.log.Warn("leave gossip", "err", err)
		}
	}
	d.gossip.Store(nil)
	if err := s.db.Shutdown(); err != nil {
		d.log.Warn("stop gossip", "err", err)
	}
	d.sess = nil
}

func (d *Daemon) stopSession(leave bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopSessionLocked(leave)
}

// startManagerLocked opens this node's raft replica over the cluster
// port and runs the manager. A new replica waits for the leader to add
// it; Bootstrap makes a new cluster's first.
func (d *Daemon) startManagerLocked() error {
	s := d.sess
	if d.tls == nil || d.tls.Peer().Role != api.RoleManager {
		return errors.New("no manager certificate yet")
	}
	ln, err := net.Listen("tcp", d.cfg.ListenAddr.String())
	if err != nil {
		return fmt.Errorf("listen for the cluster api on %s: %w", d.cfg.ListenAddr, err)
	}
	mux := portmux.New(ln, portmux.Config{Magic: manager.RaftMagic})
	var storeRef atomic.Pointer[manager.Store]
	trans, err := manager.NewTransport(mux.Magic(), d.apiAddr(), d.tls, d.raftPeer(&storeRef), d.log.With("component", "raft"))
	if err != nil {
		ln.Close()
		return err
	}
	store, err := manager.OpenStore(manager.StoreConfig{NodeID: d.id.ID, Dir: d.path(raftDirName), Transport: trans,
		LeaderChanged: func(id string) { d.leaderEvent(id, storeRef.Load()) }, Logger: d.log.With("component", "raft")})
	if err != nil {
		ln.Close()
		return err
	}
	storeRef.Store(store)
	m, err := manager.New(manager.Config{Store: store, DB: s.db, NodeID: d.id.ID, APIAddr: d.apiAddr(),
		Ready: d.managerReady, GossipKeyRotation: d.cfg.GossipKeyRotation, RescheduleAfter: d.cfg.RescheduleDelay, Logger: d.log.With("component", "manager")})
	if err != nil {
		_ = store.Close()
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	r := &managerRole{store: store, m: m, cancel: cancel}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		_ = mux.Serve() // ends when the listener closes
	}()
	go func() {
		defer r.wg.Done()
		m.Run(ctx)
	}()
	goServe(ctx, &r.wg, d.log, newHTTPServer(d.srv.ClusterHandler(), d.log.With("component", "cluster api")),
		ca.Listener(mux.Default(), d.tls.ServerConfig(false), maxHandshakes, handshakeTimeout), "cluster api")
	s.mgr = r
	return nil
}

// stillVoter says whether a demoted manager is still in the raft
// configuration it knows, for at most leaveRaftWithin.
func (r *managerRole) stillVoter() bool {
	if r.demotedAt.IsZero() {
		r.demotedAt = time.Now()
	}
	if time.Since(r.demotedAt) > leaveRaftWithin {
		return false
	}
	servers, err := r.store.Servers()
	if err != nil {
		return false
	}
	for _, sv := range servers {
		if sv.ID == r.m.NodeID() {
			return true
		}
	}
	return false
}

// managerReady checks that the node at addr answers on its cluster port
// with a manager's certificate of this cluster.
func (d *Daemon) managerReady(addr string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, d.tls.ClientConfig())
	if err != nil {
		return err
	}
	return conn.Close()
}

// stopManagerLocked stops the manager, the cluster port and raft.
func (d *Daemon) stopManagerLocked() {
	if d.sess == nil || d.sess.mgr == nil {
		return
	}
	r := d.sess.mgr
	r.cancel()
	if err := r.store.Close(); err != nil {
		d.log.Warn("stop raft", "err", err)
	}
	r.wg.Wait()
	d.sess.mgr = nil
}

// watchRole follows this node's role in the cluster's state: a promoted
// worker starts its manager role, a demoted manager stops it and forgets
// its replica. It also keeps the identity's peers and managers current,
// for a restart with no manager reachable.
func (d *Daemon) watchRole(ctx context.Context, s *session) {
	t := time.NewTicker(roleCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.checkRole(ctx, s)
	}
}

func (d *Daemon) checkRole(ctx context.Context, s *session) {
	// A transition in progress (a leave waiting for this goroutine, say)
	// holds the lock: look again on the next tick.
	if !d.mu.TryLock() {
		return
	}
	defer d.mu.Unlock()
	if d.sess != s || ctx.Err() != nil {
		return
	}
	nodes := s.agent.Desired().Nodes
	if s.mgr != nil {
		nodes = s.mgr.m.Read().Nodes // read only
	}
	self, known := nodes[d.id.ID]
	if d.tls != nil && (s.renewDue || d.renewNeeded(s, self, known)) && s.renewing.CompareAndSwap(false, true) {
		go func() {
			defer s.renewing.Store(false)
			if err := d.renew(ctx, s); err != nil {
				d.log.Warn("renew the node certificate", "err", err)
			}
		}()
	}
	changed := false
	certRole := ""
	if d.tls != nil {
		certRole = d.tls.Peer().Role
	}
	switch {
	case !known:
	case self.Role == api.RoleManager && s.mgr == nil && certRole == api.RoleManager:
		d.log.Info("promoted: starting the manager role")
		if err := d.startManagerLocked(); err != nil {
			d.log.Error("promote", "err", err)
			return
		}
		d.id.Role, changed = api.RoleManager, true
	case self.Role == api.RoleWorker && s.mgr != nil && s.mgr.stillVoter():
		// The leader removes it from raft next; it answers until then.
	case self.Role == api.RoleWorker && s.mgr != nil:
		d.log.Info("demoted: stopping the manager role")
		d.stopManagerLocked()
		if err := os.RemoveAll(d.path(raftDirName)); err != nil {
			d.log.Warn("remove raft dir", "err", err)
		}
		d.id.Role, changed = api.RoleWorker, true
	}
	if changed {
		if err := s.db.UpdateMeta(d.metaBytes()); err != nil {
			d.log.Warn("gossip the new role", "err", err)
		}
	}
	var managers, peers []string
	for _, n := range nodes {
		if n.Role == api.RoleManager && n.APIAddr != "" {
			managers = append(managers, n.APIAddr)
		}
	}
	for _, m := range s.db.Members() {
		if records.Reachable(m.State) && m.Name != d.id.ID {
			peers = append(peers, net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)))
		}
	}
	slices.Sort(managers)
	slices.Sort(peers)
	if len(managers) > 0 && !slices.Equal(managers, d.id.Managers) {
		d.id.Managers, changed = managers, true
	}
	if len(peers) > 0 && !slices.Equal(peers, d.id.Peers) {
		d.id.Peers, changed = peers, true
	}
	if changed {
		if err := d.saveIdentityLocked(); err != nil {
			d.log.Warn("save identity", "err", err)
		}
	}
}

// renewNeeded says whether the node certificate must be renewed: its role
// is not the one the cluster gives the node, the published trust (roots,
// gossip keys) is not the one held, or two thirds of its life are gone.
func (d *Daemon) renewNeeded(s *session, self api.Node, known bool) bool {
	peer := d.tls.Peer()
	if known && self.Role != peer.Role {
		return true
	}
	if info := s.agent.DesiredInfo(); info.Fresh && info.Trust != "" && info.Trust != d.id.Trust {
		return true
	}
	issued := d.tls.Leaf().NotBefore
	return time.Since(issued) > 2*peer.NotAfter.Sub(issued)/3
}

// renew asks the managers in turn for a new certificate for this node's
// key, and takes the roots and gossip keys that come with it. The
// requests are made without the daemon's lock; the answer is applied
// under it, to the session that asked.
func (d *Daemon) renew(ctx context.Context, s *session) error {
	d.mu.RLock()
	key, nodeID, managers, conf := d.id.Key, d.id.ID, slices.Clone(d.id.Managers), d.tls.ClientConfig()
	d.mu.RUnlock()
	csr, err := ca.CSRFor(key, nodeID)
	if err != nil {
		return err
	}
	if len(managers) == 0 {
		return errors.New("no manager known")
	}
	var last error
	for _, addr := range managers {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := api.NewClusterClient(addr, conf).Renew(rctx, api.RenewRequest{CSR: csr})
		cancel()
		if err != nil {
			last = fmt.Errorf("%s: %w", addr, err)
			continue
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.sess != s {
			return nil // left or stopped meanwhile
		}
		if err := d.tls.Set(resp.Cert, key, resp.CACerts); err != nil {
			return fmt.Errorf("renewed certificate from %s: %w", addr, err)
		}
		if err := s.db.SetKeys(resp.GossipKeys); err != nil {
			return err
		}
		d.id.Cert, d.id.CACerts, d.id.GossipKeys = resp.Cert, resp.CACerts, resp.GossipKeys
		d.id.Trust = ca.Trust(resp.CACerts, resp.GossipKeys)
		s.renewDue = false
		d.log.Info("node certificate renewed", "role", resp.Role, "from", addr, "expires", d.tls.Peer().NotAfter.Format(time.RFC3339))
		return d.saveIdentityLocked()
	}
	return last
}

// startGossip brings memberlist up with the cluster's gossip key.
func (d *Daemon) startGossip() (*gossip.DB, error) {
	if len(d.id.GossipKeys) == 0 || len(d.id.GossipKeys[0]) != 32 {
		return nil, errors.New("no gossip key: the run dir's node.json is damaged; leave and join again")
	}
	gc := gossip.DefaultConfig()
	gc.Name = d.id.ID
	gc.BindAddr = d.cfg.ListenAddr.Addr().String()
	gc.BindPort = d.cfg.GossipPort
	gc.AdvertiseAddr = d.advertise().String()
	gc.AdvertisePort = d.cfg.GossipPort
	gc.SecretKey = d.id.GossipKeys[0]
	gc.Meta = d.metaBytes()
	gc.Logger = d.log.With("component", "gossip")
	gc.MemberChanged = d.memberEvent
	db, err := gossip.New(gc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", gc.BindAddr, gc.BindPort, err)
	}
	if err := db.SetKeys(d.id.GossipKeys); err != nil {
		_ = db.Shutdown()
		return nil, err
	}
	return db, nil
}

func (d *Daemon) meta() records.NodeMeta {
	a := d.advertise()
	return records.NodeMeta{Name: d.cfg.NodeName, Role: d.id.Role, Addr: a,
		DataPlane: string(d.dataPlane), Version: api.Version, Prefix: addrPrefix(a), DataPathPort: d.cfg.DataPathPort}
}

func (d *Daemon) metaBytes() []byte {
	b, err := records.EncodeMeta(d.meta())
	if err != nil {
		panic(err) // a programming error: the fields are ours
	}
	return b
}

// newAgent wires the node agent over the session's gossip.
func (d *Daemon) newAgent(db *gossip.DB) (*agent.Agent, error) {
	var bridges []netip.Prefix
	if d.ctrs != nil {
		bridges = d.ctrs.Subnets()
	}
	subnet, err := gatewaySubnet(bridges)
	if err != nil {
		return nil, err
	}
	a := d.advertise()
	var ctrs agent.Bridges
	if d.ctrs != nil {
		ctrs = d.ctrs
	}
	return agent.New(agent.Config{Bridges: ctrs, NodeID: d.id.ID, AdvertiseAddr: a, RunDir: d.cfg.RunDir,
		DataPlane: d.dataPlane, DataPathPort: d.cfg.DataPathPort, UnderlayMTU: underlayMTU(a),
		GatewaySubnet: subnet, DrainDelay: d.cfg.DrainDelay, IPVSTimeouts: d.cfg.IPVSTimeouts, ConntrackMax: d.cfg.ConntrackMax,
		NeighbourMax: lb.DefaultNeighbourMax, FlowTables: func(ns string) lb.FlowTables { return lb.Nft{NetNS: ns} }, FlowOffload: d.cfg.FlowOffload,
		DNSUpstreams: d.cfg.DNSUpstreams, DNSTTL: d.cfg.DNSTTL, DB: db, PushLogs: d.pushLogs(d.tls),
		Metrics: d.metrics, Events: d.events, Logger: d.log.With("component", "agent")})
}

// pushLogs sends this node's tasks' output to a manager's cluster API
// with the node's certificate (id, whose renewals it follows), for
// service logs; nil without a certificate.
func (d *Daemon) pushLogs(id *ca.Identity) agent.PushLogsFunc {
	if id == nil {
		return nil
	}
	return func(ctx context.Context, addr netip.AddrPort, sub string, body io.Reader) error {
		return api.NewClusterClient(addr.String(), id.ClientConfig()).PushLogs(ctx, sub, body)
	}
}

// raftPeer admits a raft connection from a manager of this cluster: its
// certificate says so, and so does the replica once it knows the node (a
// new replica, before its first snapshot, goes by the certificate).
func (d *Daemon) raftPeer(store *atomic.Pointer[manager.Store]) func(ca.Peer) error {
	clusterID := d.id.ClusterID
	return func(p ca.Peer) error {
		if p.ClusterID != clusterID || p.Role != api.RoleManager {
			return fmt.Errorf("node %s is not a manager of this cluster", p.NodeID)
		}
		if st := store.Load(); st != nil {
			if n, ok := st.Read().Nodes[p.NodeID]; ok && n.Role != api.RoleManager {
				return fmt.Errorf("node %s was demoted", p.NodeID)
			}
		}
		return nil
	}
}
