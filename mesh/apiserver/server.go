package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/internal/ratelog"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/capture"
	"github.com/meshd/meshd/mesh/events"
	"github.com/meshd/meshd/mesh/records"
)

// Request bodies are read whole, and refused with a 413 over their cap,
// before any work is done on them ([LimitBody]). The cluster port answers
// any host that reaches it, so its cap is tight; the local socket is
// root's, and its cap only stops a runaway script. Both are far above the
// largest request the field limits allow (mesh/api's MaxArgs and the
// rest).
const (
	maxBody      = 1 << 20 // the cluster port's cap
	maxLocalBody = 4 << 20 // the unix socket's cap
)

// refusedLogEvery is how often a remote address's refused cluster
// requests are logged; the ones in between are counted.
const refusedLogEvery = time.Minute

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
	UpdateService(ctx context.Context, ref string, u api.ServiceUpdate) (api.Service, error)
	RollbackService(ctx context.Context, ref string) (api.Service, error)
	RotateJoinToken(ctx context.Context, role string) (api.JoinToken, error)
	RotateCA(ctx context.Context) (api.SwarmCA, error)
	// Join admits a node with the role its token gives (cluster port).
	Join(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error)
	// Renew signs a new certificate for a node (cluster port).
	Renew(ctx context.Context, nodeID string, req api.RenewRequest) (api.RenewResponse, error)
	ContainerWrites
}

// Node is what this node knows, for the reads.
type Node interface {
	Info() api.Info
	// Manager says whether cluster reads are served here: nil on a
	// manager, api.ErrNotManager on a worker, api.ErrNotInSwarm before
	// init or join.
	Manager() error
	// Control returns the cluster's writes: Manager's refusals, and
	// api.ErrNoLeader on a manager that knows no leader.
	Control() (Writes, error)
	// ClusterContainers returns the cluster's writes on this node's
	// standalone containers on attachable overlays: Control's on a
	// manager, a [NodeForwarder] to the managers on a worker,
	// api.ErrNotInSwarm outside a swarm.
	ClusterContainers() (ContainerWrites, error)
	// ConnectBridge and DisconnectBridge connect a task this node runs to
	// one of its bridge networks and take it off again (the node's
	// agent); api.ErrNotInSwarm outside a swarm.
	ConnectBridge(ctx context.Context, taskID, network string, a api.ContainerAttach) error
	DisconnectBridge(ctx context.Context, taskID, network string) error
	// SyncAgent runs the node's agent's reconcile now and waits for it:
	// an engine container's overlay link is built before network
	// connect returns.
	SyncAgent(ctx context.Context) error
	// JoinToken returns the token for role (a manager's read).
	JoinToken(role string) (api.JoinToken, error)
	// CA returns the cluster's roots (a manager's read).
	CA() (api.SwarmCA, error)
	// Objects is the desired state as this node knows it: a manager's
	// replica, or the last state a worker verified.
	Objects() records.Objects
	// TaskStatuses are every node's task reports, by task ID.
	TaskStatuses() map[string]api.TaskStatus
	// Programmed are every node's reports of the tasks it balances and
	// resolves to: by service ID, then node ID.
	Programmed() map[string]map[string][]string
	// Nodes is node ls as this node sees it.
	Nodes() []api.Node
	// Namespaces are this node's namespace files: their directory and names.
	Namespaces() (dir string, names []string, err error)
	// TaskLogPath is the file holding the output of a task this node
	// runs; "" outside a cluster.
	TaskLogPath(taskID string) string
	// TaskEnded says whether a task will write no more output here: its
	// process ended, or it is no longer this node's current task.
	TaskEnded(taskID string) bool
	// StoppedTask says whether taskID has no process on this node (its
	// agent stopped it, or never started it), and how the process ended
	// (nil: unknown).
	StoppedTask(taskID string) (exitCode *int, stopped bool)
	// LogSubs is where service logs asks the nodes for their tasks'
	// output: the gossip store and the address of this manager's cluster
	// API, which the nodes push to; a nil store off a manager.
	LogSubs() (records.DB, netip.AddrPort)
	// LBTables are this node's load balancers, ipvsadm-shaped.
	LBTables() []api.LBTable
	// Kernel is this node's kernel snapshot: its own namespace and those
	// Namespaces lists. Kind and Owner are left to the server.
	Kernel(ctx context.Context) (api.KernelSnapshot, error)
	// NetworkBuilt says whether this node still has network id's
	// namespaces (its overlay, its load-balancer sandbox).
	NetworkBuilt(id string) bool
	// Gateway is this node's gateway bridge and its endpoints; false
	// outside a swarm, where there is none.
	Gateway() (Gateway, bool)
	// Check compares this node's desired state with its kernel (meshctl
	// check); api.ErrNotInSwarm outside a swarm.
	Check(ctx context.Context) (api.Check, error)
	// PauseRepair pauses or resumes the agent's reconciling, a test hook
	// refused unless meshd runs with --test-hooks.
	PauseRepair(ctx context.Context, paused bool) error
	// StateVersion is the version of a manager's replica (0 elsewhere),
	// sent with every answer to a write.
	StateVersion() uint64
}

// Gateway is a node's gateway bridge (mesh_gwbridge) as its agent built
// it, for network ls and inspect.
type Gateway struct {
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr
	Created time.Time
	Ingress netip.Addr // the ingress sandbox's address on it
	// Tasks are the tasks with a sandbox on this node, by ID, with their
	// address on the bridge: invalid for a task without a gateway link.
	Tasks map[string]netip.Addr
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
	// Containers are the node's bridge networks and standalone
	// containers; nil refuses them.
	Containers Containers
	// Events is the node's event log (GET /v1/events); nil answers
	// none.
	Events *events.Log
	// Capture opens packet sockets for POST /v1/capture; nil refuses
	// captures.
	Capture capture.Opener
	// Logger receives refused cluster requests; nil discards.
	Logger *slog.Logger
}

// Server holds the handlers of both APIs.
type Server struct {
	cfg      Config
	log      *slog.Logger
	refusals *ratelog.Limiter // of refused cluster requests, per remote address
	logs     logHub           // the service logs requests served here
	captures atomic.Int32     // the captures running
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
	return &Server{cfg: cfg, log: log, refusals: ratelog.New(refusedLogEvery)}, nil
}

// refused logs a refused cluster request: at most once a minute per
// remote host, whatever the reason, so that a host sending bad requests
// in a loop costs one line a minute, which counts the rest.
func (s *Server) refused(r *http.Request, err error) {
	host := r.RemoteAddr
	if h, _, e := net.SplitHostPort(host); e == nil {
		host = h
	}
	s.refusals.Log(r.Context(), s.log, slog.LevelWarn, host, "refused cluster request",
		"remote", r.RemoteAddr, "path", api.Clip(r.URL.Path), "err", err)
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
	{"GET /v1/tasks/{ref}/logs", local, (*Server).taskLogs},
	{"GET /v1/services/{ref}/logs", local, (*Server).serviceLogs},
	{"GET /v1/containers", local, (*Server).containers},
	{"GET /v1/containers/{ref}", local, (*Server).container},
	{"POST /v1/containers", local, (*Server).runContainer},
	{"POST /v1/containers/{ref}/stop", local, (*Server).stopContainer},
	{"POST /v1/containers/{ref}/start", local, (*Server).startContainer},
	{"DELETE /v1/containers/{ref}", local, (*Server).removeContainer},
	{"GET /v1/namespaces", local, (*Server).namespaces},
	{"GET /v1/lb", local, (*Server).lbTables},
	{"GET /v1/kernel", local, (*Server).kernel},
	{"POST /v1/trace", local, (*Server).trace},
	{"GET /v1/events", local, (*Server).events},
	{"GET /v1/check", local, (*Server).check},
	{"POST /v1/debug/repair", local, (*Server).pauseRepair},
	{"POST /v1/capture", local, (*Server).capture},

	{"POST /v1/swarm/init", local, (*Server).swarmInit},
	{"POST /v1/swarm/join", local, (*Server).swarmJoin},
	{"POST /v1/swarm/leave", local, (*Server).swarmLeave},
	{"POST /v1/swarm/join-token/{role}/rotate", local | cluster, (*Server).rotateJoinToken},
	{"GET /v1/swarm/ca", local, (*Server).swarmCA},
	{"POST /v1/swarm/ca/rotate", local | cluster, (*Server).rotateCA},
	{"POST /v1/cluster/join", cluster, (*Server).join},
	{"POST /v1/cluster/renew", cluster, (*Server).renew},
	{"POST " + logPushPrefix + "{id}", cluster, (*Server).pushLogs},
	{"POST " + api.ClusterContainersPath, cluster, (*Server).runNodeContainer},
	{"POST " + api.ClusterContainersPath + "/{ref}/stop", cluster, (*Server).stopNodeContainer},
	{"POST " + api.ClusterContainersPath + "/{ref}/start", cluster, (*Server).startNodeContainer},
	{"DELETE " + api.ClusterContainersPath + "/{ref}", cluster, (*Server).removeNodeContainer},
	{"POST " + api.ClusterContainersPath + "/{ref}/connect", cluster, (*Server).connectNodeContainer},
	{"POST " + api.ClusterContainersPath + "/{ref}/disconnect", cluster, (*Server).disconnectNodeContainer},
	{"POST /v1/nodes/{ref}/update", local | cluster, (*Server).updateNode},
	{"DELETE /v1/nodes/{ref}", local | cluster, (*Server).removeNode},
	{"POST /v1/networks", local | cluster, (*Server).createNetwork},
	{"DELETE /v1/networks/{ref}", local | cluster, (*Server).removeNetwork},
	{"POST /v1/networks/{ref}/connect", local, (*Server).connectNetwork},
	{"POST /v1/networks/{ref}/disconnect", local, (*Server).disconnectNetwork},
	{"POST /v1/services", local | cluster, (*Server).createService},
	{"POST /v1/services/{ref}/scale", local | cluster, (*Server).scaleService},
	{"DELETE /v1/services/{ref}", local | cluster, (*Server).removeService},
	{"POST /v1/services/{ref}/update", local | cluster, (*Server).updateService},
	{"POST /v1/services/{ref}/rollback", local | cluster, (*Server).rollbackService},
}

// slowRoutes may run longer than the server's WriteTimeout: swarm join
// retries an unreachable manager for meshd's --join-timeout, and a
// manager's join then waits up to twice that to be a raft voter; init and
// leave start and stop a whole session. They are served on the root-only
// socket alone and bounded by those timeouts, so their write deadline is
// lifted.
var slowRoutes = map[string]bool{"POST /v1/swarm/init": true, "POST /v1/swarm/join": true, "POST /v1/swarm/leave": true}

// LocalHandler serves the unix socket: reads answered here, writes
// applied through Writes. Bodies are capped at 4 MiB.
func (s *Server) LocalHandler() http.Handler { return LimitBody(s.mux(local), maxLocalBody) }

// ClusterHandler serves the cluster port, behind TLS with client
// certificates: a join carries a join token, a renewal, a log push or a
// node's request on its own containers needs a node's certificate,
// anything else (writes forwarded to the leader) a manager's. The caller is checked first, from the TLS handshake; bodies
// are then capped at 1 MiB, but for a node's log push, a stream.
func (s *Server) ClusterHandler() http.Handler {
	return s.authorize(clusterBodies(s.mux(cluster)))
}

// LimitBody reads a request's body whole before h sees it, and answers a
// body over n bytes with a 413 instead; h reads the body from memory.
// Reading it first makes the cap exact whatever reads it downstream and
// however it is framed.
func LimitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tooLarge := api.Errorf(http.StatusRequestEntityTooLarge, "request body over %s", sizeString(n))
		if r.ContentLength > n {
			writeError(w, tooLarge)
			return
		}
		if r.Body == nil { // a request made in a test; a server's always has one
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, tooLarge)
			return
		case err != nil:
			writeError(w, api.Invalid("read request: %v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// sizeString writes a cap in MiB when it is a whole number of them.
func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func (s *Server) mux(on exposure) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routes {
		if rt.on&on == 0 {
			continue
		}
		slow := slowRoutes[rt.pattern]
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if slow {
				// Fails only on a writer without deadlines (a test's
				// recorder), which has none to lift.
				_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
			}
			v, err := rt.handle(s, r)
			if err != nil {
				writeError(w, err)
				return
			}
			if st, ok := v.(streamer); ok {
				st.stream(w, r)
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

// decodeBody decodes a request body (already capped by LimitBody) with
// decodeJSON.
func decodeBody(r *http.Request, v any) error { return decodeJSON(r.Body, v) }

// maxDecodeError bounds the decoder's error in a 400: it may quote a
// field name or a value of the request.
const maxDecodeError = 160

// decodeJSON decodes one JSON value strictly: unknown fields are refused,
// and so is anything after the value but white space, so that `{...}
// trailing` is not taken for the object alone. An empty body is the zero
// value. A request type with CheckSizes (mesh/api's) is held to its field
// limits. Every refusal is a one-line 400.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err == io.EOF {
		return nil
	} else if err != nil {
		return api.Invalid("decode request: %s", oneLine(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Invalid("decode request: data after the JSON value")
	}
	if c, ok := v.(interface{ CheckSizes() error }); ok {
		return c.CheckSizes()
	}
	return nil
}

// oneLine cuts a message to maxDecodeError bytes on one line.
func oneLine(msg string) string {
	cut := api.Cut(msg, maxDecodeError)
	if len(cut) < len(msg) {
		cut += "…"
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, cut)
}
