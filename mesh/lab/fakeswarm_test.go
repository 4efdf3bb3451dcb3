package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// fakeSwarmd serves the part of meshd's API the lab uses (info, swarm
// init, join-token, join) on <run dir>/meshd.sock. It keeps its swarm
// state in the run dir, so that a daemon started again comes back into
// its swarm as meshd does, and appends every swarm request to
// <run dir>/calls, one line each, which survives restarts and is read by
// the tests from outside the daemon's process.
type fakeSwarmd struct {
	name, runDir string
	mu           sync.Mutex // one request at a time: state and calls files
}

// fakeSwarmState is <run dir>/swarm.json.
type fakeSwarmState struct {
	Role string `json:"role"` // empty: not in a swarm
}

const (
	callsFile      = "calls"
	fakeSwarmdFile = "swarm.json"
)

// fakeToken is the join token for role; fakeRole reads it back, so that
// a joining node knows its role without asking node1.
func fakeToken(role string) string { return api.TokenPrefix + role + "-0123456789abcdef" }

func fakeRole(token string) string {
	role, _, _ := strings.Cut(strings.TrimPrefix(token, api.TokenPrefix), "-")
	return role
}

// serveFakeSwarmd listens on the run dir's socket, replacing a stale one,
// and serves until the listener is closed.
func serveFakeSwarmd(name, runDir string) (*http.Server, error) {
	sock := filepath.Join(runDir, socketFile)
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: (&fakeSwarmd{name: name, runDir: runDir}).handler()}
	go srv.Serve(ln)
	return srv, nil
}

func (f *fakeSwarmd) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", f.do(func(st *fakeSwarmState, _ *http.Request) (any, error) {
		info := api.Info{NodeName: f.name, LocalNodeState: "inactive", Role: st.Role}
		if st.Role != "" {
			info.LocalNodeState, info.ControlAvailable = "active", st.Role == api.RoleManager
		}
		return info, nil
	}))
	mux.HandleFunc("POST /v1/swarm/init", f.do(func(st *fakeSwarmState, r *http.Request) (any, error) {
		var req api.SwarmInit
		if err := f.decode(r, &req, "swarm init"); err != nil {
			return nil, err
		}
		f.record("init " + req.AdvertiseAddr)
		if st.Role != "" {
			return nil, api.ErrAlreadyInSwarm
		}
		st.Role = api.RoleManager
		return api.SwarmInitResponse{NodeID: f.name + "-id", WorkerToken: fakeToken(api.RoleWorker),
			ManagerAddr: net.JoinHostPort(req.AdvertiseAddr, "2377")}, nil
	}))
	mux.HandleFunc("GET /v1/swarm/join-token/{role}", f.do(func(st *fakeSwarmState, r *http.Request) (any, error) {
		role := r.PathValue("role")
		f.record("join-token " + role)
		if st.Role != api.RoleManager {
			return nil, api.ErrNotManager
		}
		return api.JoinToken{Role: role, Token: fakeToken(role)}, nil
	}))
	mux.HandleFunc("POST /v1/swarm/join", f.do(func(st *fakeSwarmState, r *http.Request) (any, error) {
		var req api.SwarmJoin
		if err := f.decode(r, &req, "swarm join"); err != nil {
			return nil, err
		}
		role := fakeRole(req.Token)
		f.record("join " + req.RemoteAddr + " " + role)
		if st.Role != "" {
			return nil, api.ErrAlreadyInSwarm
		}
		st.Role = role
		return api.SwarmJoinResponse{NodeID: f.name + "-id", Role: role}, nil
	}))
	return mux
}

// do runs h with the swarm state, saves it and answers as meshd does: the
// result as JSON, or an api.Error with the error's status.
func (f *fakeSwarmd) do(h func(st *fakeSwarmState, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var st fakeSwarmState
		path := filepath.Join(f.runDir, fakeSwarmdFile)
		if data, err := os.ReadFile(path); err == nil {
			err = json.Unmarshal(data, &st)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		out, err := h(&st, r)
		if err == nil {
			data, _ := json.Marshal(st)
			err = os.WriteFile(path, data, 0o644)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(api.StatusCode(err))
			out = api.Error{Message: err.Error()}
		}
		json.NewEncoder(w).Encode(out)
	}
}

func (f *fakeSwarmd) decode(r *http.Request, v any, what string) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return api.Invalid("%s: %v", what, err)
	}
	return nil
}

func (f *fakeSwarmd) record(line string) {
	fd, err := os.OpenFile(filepath.Join(f.runDir, callsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(fd, line)
	fd.Close()
}

// calls returns the swarm requests node n's fake received, in order.
func calls(t *testing.T, n Node) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.RunDir, callsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}
