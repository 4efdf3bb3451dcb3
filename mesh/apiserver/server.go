package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// maxBody bounds a request body, read before any work is done on it.
const maxBody = 16 << 20

// Writes are the operations that change the cluster's state: the
// leader's manager, or a [Forwarder] to it from another manager.
type Writes interface {
	UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error)
	RemoveNode(ctx context.Context, ref string, force bool) error
	CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
	CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error)
	ScaleService(ctx context.Context, ref string, replicas int) (api.Service, error)
	RemoveService(ctx context.Context, ref string) error
	RotateJoinToken(ctx context.Context, role string) (api.JoinToken, error)
	RotateCA(ctx context.Context) (api.SwarmCA, error)
	// Join admits a node with the role its token gives (cluster port).
	Join(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error)
	// Renew signs a new certificate for a node (cluster port).
	Renew(ctx context.Context, nodeID string, req api.RenewRequest) (api.RenewResponse, error)
}

// Node is what this node knows, for the reads.
type Node interface {
	Info() api.Info
	// Control returns the cluster's writes when this node is a manager;
	// on a worker it fails with api.ErrNotManager, before init or join
	// with api.ErrNotInSwarm. Cluster reads ask it first too.
	Control() (Writes, error)
	// JoinToken returns the token for role (a manager's read).
	JoinToken(role string) (api.JoinToken, error)
	// CA returns the cluster's roots (a manager's read).
	CA() (api.SwarmCA, error)
	// Objects is the desired state as this node knows it: a manager's
	// replica, or the last state a worker verified.
	Objects() records.Objects
	// TaskStatuses are every node's task reports, by task ID.
	TaskStatuses() map[string]api.TaskStatus
	// Nodes is node ls as this node sees it.
	Nodes() []api.Node
	// Namespaces are this node's namespace files: their directory and names.
	Namespaces() (dir string, names []string, err error)
	// LBTables are this node's load balancers, ipvsadm-shaped.
	LBTables() []api.LBTable
	// StateVersion is the version of a manager's replica (0 elsewhere),
	// sent with every answer to a write.
	StateVersion() uint64
}

// Swarm takes the node in and out of a cluster.
type Swarm interface {
	Init(ctx context.Context, req api.SwarmInit) (api.SwarmInitResponse, error)
	Join(ctx context.Context, req api.SwarmJoin) (api.SwarmJoinResponse, error)
	Leave(ctx context.Context, req api.SwarmLeave) error
}

// Config configures a [Server].
type Config struct {
	Node  Node  // required
	Swarm Swarm // required
	Peers Peers // required to serve the cluster port
	// Logger receives refused cluster requests; nil discards.
	Logger *slog.Logger
}

// Server holds the handlers of both APIs.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns a server; it listens on nothing (see LocalHandler and
// ClusterHandler).
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil || cfg.Swarm == nil {
		return nil, errors.New("apiserver: config needs Node and Swarm")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{cfg: cfg, log: log}, nil
}

// Where a route is served.
type exposure int

const (
	local   exposure = 1 << iota // the unix socket
	cluster                      // the manager's cluster port
)

type route struct {
	pattern string
	on      exposure
	handle  func(s *Server, r *http.Request) (any, error)
}

// routes is the one route table of both APIs.
var routes = []route{
	{"GET /v1/info", local, (*Server).info},
	{"GET /v1/nodes", local, (*Server).nodes},
	{"GET /v1/nodes/{ref}", local, (*Server).node},
	{"GET /v1/swarm/join-token/{role}", local, (*Server).joinToken},
	{"GET /v1/networks", local, (*Server).networks},
	{"GET /v1/networks/{ref}", local, (*Server).network},
	{"GET /v1/services", local, (*Server).services},
	{"GET /v1/services/{ref}", local, (*Server).service},
	{"GET /v1/tasks", local, (*Server).tasks},
	{"GET /v1/tasks/{ref}", local, (*Server).task},
	{"GET /v1/namespaces", local, (*Server).namespaces},
	{"GET /v1/lb", local, (*Server).lbTables},

	{"POST /v1/swarm/init", local, (*Server).swarmInit},
	{"POST /v1/swarm/join", local, (*Server).swarmJoin},
	{"POST /v1/swarm/leave", local, (*Server).swarmLeave},
	{"POST /v1/swarm/join-token/{role}/rotate", local | cluster, (*Server).rotateJoinToken},
	{"GET /v1/swarm/ca", local, (*Server).swarmCA},
	{"POST /v1/swarm/ca/rotate", local | cluster, (*Server).rotateCA},
	{"POST /v1/cluster/join", cluster, (*Server).join},
	{"POST /v1/cluster/renew", cluster, (*Server).renew},
	{"POST /v1/nodes/{ref}/update", local | cluster, (*Server).updateNode},
	{"DELETE /v1/nodes/{ref}", local | cluster, (*Server).removeNode},
	{"POST /v1/networks", local | cluster, (*Server).createNetwork},
	{"DELETE /v1/networks/{ref}", local | cluster, (*Server).removeNetwork},
	{"POST /v1/services", local | cluster, (*Server).createService},
	{"POST /v1/services/{ref}/scale", local | cluster, (*Server).scaleService},
	{"DELETE /v1/services/{ref}", local | cluster, (*Server).removeService},
}

// LocalHandler serves the unix socket: reads answered here, writes
// applied through Writes.
func (s *Server) LocalHandler() http.Handler { return s.mux(local) }

// ClusterHandler serves the cluster port, behind TLS with client
// certificates: a join carries a join token, a renewal needs a node's
// certificate, anything else (writes forwarded to the leader) a
// manager's.
func (s *Server) ClusterHandler() http.Handler { return s.authorize(s.mux(cluster)) }

func (s *Server) mux(on exposure) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routes {
		if rt.on&on == 0 {
			continue
		}
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := rt.handle(s, r)
			if err != nil {
				writeError(w, err)
				return
			}
			if r.Method != http.MethodGet {
				if v := s.cfg.Node.StateVersion(); v > 0 {
					w.Header().Set(api.StateVersionHeader, strconv.FormatUint(v, 10))
				}
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, api.StatusCode(err), api.Error{Message: err.Error()})
}

// decodeBody decodes a request body strictly: unknown fields are refused.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return api.Invalid("decode request: %v", err)
	}
	return nil
}
