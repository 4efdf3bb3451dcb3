// Package vmagent is the two-VM suite's way into its VMs (see vm/pair):
// vm-agent serves Handler on a VM's address on the suite's private
// network, and the test runs commands there with Client. That network
// lives in a network namespace of the test's own and reaches nothing
// else, so the agent takes no credentials: nothing but the test can
// reach it.
package vmagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"time"
)

// Request is one command to run.
type Request struct {
	Argv     []string `json:"argv"`
	TimeoutS int      `json:"timeout_s"`
}

// Result is how it ended: Code is the exit status, -1 when the command
// could not start or was killed at its timeout (Err says which).
type Result struct {
	Output string `json:"output"`
	Code   int    `json:"code"`
	Err    string `json:"err,omitempty"`
}

const (
	maxBody        = 64 << 10
	maxAnswer      = 16 << 20
	defaultTimeout = 60 * time.Second
	maxTimeout     = 10 * time.Minute
)

// Handler runs the command POSTed to /run.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", run)
	return mux
}

func run(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil || len(req.Argv) == 0 {
		http.Error(w, "want a JSON body with argv", http.StatusBadRequest)
		return
	}
	timeout := min(time.Duration(req.TimeoutS)*time.Second, maxTimeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...).CombinedOutput()
	res := Result{Output: string(out)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		res.Code = ee.ExitCode()
	default:
		res.Code, res.Err = -1, err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// Client runs commands on one VM's agent.
type Client struct {
	HTTP *http.Client
	Addr string // host:port
}

// Run runs argv on the VM, for at most timeout.
func (c Client) Run(ctx context.Context, timeout time.Duration, argv ...string) (Result, error) {
	body, err := json.Marshal(Request{Argv: argv, TimeoutS: int(timeout / time.Second)})
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Addr+"/run", bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("run %q on %s: %w", argv, c.Addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Result{}, fmt.Errorf("run %q on %s: %w", argv, c.Addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("run %q on %s: %s: %s", argv, c.Addr, resp.Status, bytes.TrimSpace(b))
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return Result{}, fmt.Errorf("run %q on %s: %w", argv, c.Addr, err)
	}
	return res, nil
}
