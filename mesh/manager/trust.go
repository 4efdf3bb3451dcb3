package manager

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
	"github.com/meshd/meshd/mesh/records"
)

// NewCluster returns the first state of a new cluster: its identity, root
// CA, join tokens and gossip key, the first manager's node record and the
// ingress network. certExpiry zero means ca.DefaultCertExpiry.
func NewCluster(self api.Node, certExpiry time.Duration, now time.Time) (State, error) {
	if certExpiry <= 0 {
		certExpiry = ca.DefaultCertExpiry
	}
	st := State{ClusterID: api.NewID(), CertExpiry: certExpiry, GossipRotatedAt: now}
	root, err := ca.NewRoot(st.ClusterID, now)
	if err != nil {
		return State{}, err
	}
	st.CACerts, st.CAKey = [][]byte{root.CertDER}, root.KeyDER
	st.WorkerToken, st.ManagerToken = api.NewJoinToken(root.Digest()), api.NewJoinToken(root.Digest())
	st.GossipKeys = [][]byte{newGossipKey()}
	st.init()
	self.Role = api.RoleManager
	st.Nodes[self.ID] = self
	if err := addIngress(&st, self.CreatedAt); err != nil {
		return State{}, err
	}
	if err := ensureLBAddrs(&st); err != nil {
		return State{}, err
	}
	return st, nil
}

func newGossipKey() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails since Go 1.24
	return k
}

// Root is the CA that signs now.
func (s *State) Root() (*ca.Root, error) {
	if len(s.CACerts) == 0 {
		return nil, api.Errorf(http.StatusInternalServerError, "the cluster has no CA")
	}
	return ca.ParseRoot(s.CACerts[0], s.CAKey)
}

// Trust names the roots and gossip keys every node must hold (see
// ca.Trust).
func (s *State) Trust() string { return ca.Trust(s.CACerts, s.GossipKeys) }

// issue signs a certificate for a node with its role in the state and
// records the trust it gets.
func issue(s *State, nodeID string, csr []byte, now time.Time) ([]byte, error) {
	n, ok := s.Nodes[nodeID]
	if !ok {
		return nil, api.Errorf(http.StatusForbidden, "node %s is not part of this swarm", nodeID)
	}
	root, err := s.Root()
	if err != nil {
		return nil, err
	}
	cert, err := root.Issue(csr, nodeID, n.Role, s.ClusterID, s.CertExpiry, now)
	if err != nil {
		return nil, err
	}
	s.Trusted[nodeID] = s.Trust()
	return cert, nil
}

// roleOfToken says which role a join token gives, or "" for neither.
func roleOfToken(s *State, token string) string {
	switch {
	case token == "":
		return ""
	case token == s.WorkerToken:
		return api.RoleWorker
	case token == s.ManagerToken:
		return api.RoleManager
	}
	return ""
}

// errBadToken is every refused join's answer: it does not say which part
// of the token was wrong.
var errBadToken = api.Errorf(http.StatusUnauthorized, "invalid join token")

// Join admits a node with the role its token gives and signs its
// certificate. It is recorded at once, so node ls shows it even before
// gossip has spread its arrival; a manager is added to raft by the
// leader's loop once it answers there.
func (m *Manager) Join(_ context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	if err := checkJoin(req, m.cfg.NodeID); err != nil {
		return api.JoinResponse{}, err
	}
	now := time.Now().UTC()
	var (
		st   State
		role string
		cert []byte
	)
	err := m.update(func(s *State) error {
		if role = roleOfToken(s, req.Token); role == "" {
			return errBadToken
		}
		n, ok := s.Nodes[req.ID]
		if !ok {
			n = api.Node{ID: req.ID, Availability: api.AvailabilityActive, CreatedAt: now}
		}
		n.Hostname, n.Role, n.DataPlane, n.Version, n.APIAddr = req.Hostname, role, req.DataPlane, req.Version, req.APIAddr
		n.Addr, n.AddrPrefix, n.Status, n.UpdatedAt = req.Addr, req.AddrPrefix, api.StatusReady, now
		s.Nodes[req.ID] = n
		var err error
		if cert, err = issue(s, req.ID, req.CSR, now); err != nil {
			return err
		}
		if err := ensureLBAddrs(s); err != nil {
			return err
		}
		st = *s
		return nil
	})
	if err != nil {
		return api.JoinResponse{}, err
	}
	m.log.Info("node joined", "joiner", req.Hostname, "joiner_id", req.ID, "addr", req.Addr, "role", role)
	resp := api.JoinResponse{ClusterID: st.ClusterID, Role: role, ManagerID: m.cfg.NodeID, ManagerAddr: m.cfg.APIAddr,
		Managers: managerAddrs(st), Cert: cert, CACerts: st.CACerts, GossipKeys: st.GossipKeys}
	for _, mb := range m.cfg.DB.Members() {
		if records.Reachable(mb.State) {
			resp.GossipAddrs = append(resp.GossipAddrs, net.JoinHostPort(mb.Addr, strconv.Itoa(mb.Port)))
		}
	}
	return resp, nil
}

// Renew signs a new certificate for a node that proved who it is with its
// current one; the role is the one the cluster gives it now, so a demoted
// manager's renewed certificate is a worker's.
func (m *Manager) Renew(_ context.Context, nodeID string, req api.RenewRequest) (api.RenewResponse, error) {
	var resp api.RenewResponse
	err := m.update(func(s *State) error {
		cert, err := issue(s, nodeID, req.CSR, time.Now().UTC())
		if err != nil {
			return err
		}
		resp = api.RenewResponse{Role: s.Nodes[nodeID].Role, Cert: cert, CACerts: s.CACerts, GossipKeys: s.GossipKeys}
		return nil
	})
	return resp, err
}

// JoinToken returns the token for role.
func (m *Manager) JoinToken(role string) (api.JoinToken, error) {
	st := m.cfg.Store.Read()
	switch role {
	case api.RoleWorker:
		return api.JoinToken{Role: role, Token: st.WorkerToken, ManagerAddr: m.cfg.APIAddr}, nil
	case api.RoleManager:
		return api.JoinToken{Role: role, Token: st.ManagerToken, ManagerAddr: m.cfg.APIAddr}, nil
	}
	return api.JoinToken{}, api.Invalid("unknown role %s: want worker or manager", api.Quote(role))
}

// RotateJoinToken replaces the token for role: nodes that joined keep
// their place; the old token admits no one.
func (m *Manager) RotateJoinToken(_ context.Context, role string) (api.JoinToken, error) {
	if _, err := m.JoinToken(role); err != nil {
		return api.JoinToken{}, err
	}
	err := m.update(func(s *State) error {
		root, err := s.Root()
		if err != nil {
			return err
		}
		if role == api.RoleWorker {
			s.WorkerToken = api.NewJoinToken(root.Digest())
		} else {
			s.ManagerToken = api.NewJoinToken(root.Digest())
		}
		return nil
	})
	if err != nil {
		return api.JoinToken{}, err
	}
	return m.JoinToken(role)
}

// RotateCA makes a new root CA the signer. Both roots are trusted while
// every node renews (they see the trust change in the tables); the
// leader's loop drops the old root once all have. The join tokens change
// with the root's digest.
func (m *Manager) RotateCA(_ context.Context) (api.SwarmCA, error) {
	var out api.SwarmCA
	err := m.update(func(s *State) error {
		now := time.Now().UTC()
		old, err := s.Root()
		if err != nil {
			return err
		}
		root, err := ca.NewRoot(s.ClusterID, now)
		if err != nil {
			return err
		}
		cross, err := old.CrossSign(root, now)
		if err != nil {
			return err
		}
		// The new root, the new root certified by the old one, the old
		// root: nodes not yet renewed verify new certificates through the
		// second; a rotation before the last ended drops its leftovers.
		s.CACerts = [][]byte{root.CertDER, cross, old.CertDER}
		s.CAKey = root.KeyDER
		s.WorkerToken, s.ManagerToken = api.NewJoinToken(root.Digest()), api.NewJoinToken(root.Digest())
		out = caView(s)
		return nil
	})
	return out, err
}

// CA returns the roots as swarm ca prints them.
func (m *Manager) CA() api.SwarmCA {
	st := m.cfg.Store.Read()
	return caView(&st)
}

// caView is the roots swarm ca prints: the signing one, and the old one
// while a rotation is under way (not the cross-signed certificate).
func caView(s *State) api.SwarmCA {
	out := api.SwarmCA{Rotating: len(s.CACerts) > 1}
	for i, c := range s.CACerts {
		if i == 0 || i == len(s.CACerts)-1 {
			out.Certs = append(out.Certs, c)
		}
	}
	return out
}

// RotateGossipKey starts a gossip key rotation: the new key is installed
// everywhere as a secondary, then made primary, then the old one is
// removed, each step once every node holds the previous one.
func (m *Manager) RotateGossipKey(_ context.Context) error {
	return m.update(func(s *State) error {
		if s.GossipRotation != 0 {
			return api.Conflict("a gossip key rotation is under way")
		}
		s.GossipKeys = append(s.GossipKeys[:1:1], newGossipKey())
		s.GossipRotation, s.GossipRotatedAt = gossipKeyAdded, time.Now().UTC()
		return nil
	})
}

// The steps of a gossip key rotation.
const (
	gossipKeyAdded    = 1 // the new key is every node's secondary
	gossipKeySwitched = 2 // the new key is primary, the old one still accepted
)

// advanceTrust moves a CA or gossip key rotation on once every Ready
// node holds the current trust: a rotating CA's old roots go; a new
// secondary gossip key becomes primary, and then the old key goes. Each
// step changes the trust, so nodes renew again before the next. A node
// down meanwhile renews when it comes back, before it gossips.
func advanceTrust(s *State) {
	if len(s.CACerts) < 2 && s.GossipRotation == 0 {
		return
	}
	trust := s.Trust()
	for id, n := range s.Nodes {
		if n.Status == api.StatusReady && s.Trusted[id] != trust {
			return
		}
	}
	switch {
	case len(s.CACerts) > 1:
		s.CACerts = s.CACerts[:1]
	case s.GossipRotation == gossipKeyAdded:
		s.GossipKeys = [][]byte{s.GossipKeys[1], s.GossipKeys[0]}
		s.GossipRotation = gossipKeySwitched
	case s.GossipRotation == gossipKeySwitched:
		s.GossipKeys = s.GossipKeys[:1]
		s.GossipRotation = 0
	}
}

func checkJoin(req api.JoinRequest, self string) error {
	if err := req.CheckSizes(); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(req.Addr); err != nil || req.ID == "" || req.Hostname == "" || req.GossipPort <= 0 || req.GossipPort > 65535 {
		return api.Invalid("join request needs ID, Hostname, Addr and GossipPort")
	}
	if _, err := netip.ParseAddrPort(req.APIAddr); err != nil {
		return api.Invalid("join request needs APIAddr (host:port)")
	}
	if len(req.CSR) == 0 {
		return api.Invalid("join request needs a certificate request")
	}
	if req.ID == self {
		return api.Conflict("node ID %s is this manager's own", req.ID)
	}
	return nil
}
