package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/lb"
)

// Up builds the lab opts describes, starts a daemon per node and, when
// opts.Managers is not 0, forms the swarm with [FormSwarm]; see the
// package doc for the layout. It never leaves a half-built lab: if any
// step or opts.WaitReady fails, it tears down what it built and returns
// the cause.
//
// If the lab is already up, complete, the same size and with as many
// managers, Up returns it with an error wrapping [ErrAlreadyUp], and sends
// nothing to its daemons; any other lab with this prefix (another size or
// swarm, a dead daemon, leftovers) is an error asking for "meshctl lab
// down".
func Up(ctx context.Context, opts Options) (*Lab, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := labDir(opts.Root, opts.Prefix)
	if err != nil {
		return nil, err
	}
	if l, err := existing(opts, dir); l != nil || err != nil {
		return l, err
	}
	l, err := newLab(opts, dir)
	if err != nil {
		return nil, err
	}
	l.logger.Info("lab up", "prefix", l.prefix, "nodes", l.n, "dir", dir)
	l.growNeighbours()
	if err := l.build(ctx); err != nil {
		return nil, l.abort(err)
	}
	if l.managers > 0 {
		if err := l.formSwarm(ctx, opts.Progress); err != nil {
			return nil, l.abort(l.nodeError("form the swarm", err))
		}
	}
	if opts.WaitReady != nil {
		if err := opts.WaitReady(ctx, l); err != nil {
			return nil, l.abort(l.nodeError("wait for lab ready", err))
		}
	}
	l.logger.Info("lab ready", "prefix", l.prefix, "nodes", l.n)
	return l, nil
}

// existing looks for a lab with this prefix. It returns (nil, nil) when
// there is none, so that Up may build.
func existing(opts Options, dir string) (*Lab, error) {
	const hint = "run 'meshctl lab down' first"
	l, err := Load(opts.Root, opts.Prefix)
	if errors.Is(err, ErrNotUp) {
		left, lerr := Leftovers(opts.Prefix, dir)
		if lerr != nil {
			return nil, lerr
		}
		if len(left) > 0 {
			return nil, fmt.Errorf("leftovers of a lab found (%s); %s", strings.Join(left, ", "), hint)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, hint)
	}
	if l.n != opts.Nodes || l.managers != opts.Managers {
		return nil, fmt.Errorf("lab is up with %s; %s", l.describe(), hint)
	}
	if p := l.problems(); len(p) > 0 {
		return nil, fmt.Errorf("lab is up but broken (%s); %s", strings.Join(p, ", "), hint)
	}
	return l, fmt.Errorf("%w with %s", ErrAlreadyUp, l.describe())
}

// problems lists what of a recorded lab is missing: namespaces and daemons.
func (l *Lab) problems() []string {
	var out []string
	for _, ns := range netnsNames(l.prefix, l.n) {
		if _, err := os.Stat(netnsPath(ns)); err != nil {
			out = append(out, "netns "+ns+" missing")
		}
	}
	for _, n := range l.Nodes() {
		if !alive(n.PID, n.Start) {
			out = append(out, n.Name+" daemon not running")
		}
	}
	return out
}

// build creates the directory, the namespaces and the underlay, then starts
// the daemons. lab.json is written first and after every daemon, so that a
// crash at any point leaves state that Down can use.
func (l *Lab) build(ctx context.Context) error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", l.dir, err)
	}
	if err := nsfile.PrepareDir(netnsDir); err != nil {
		return err
	}
	if err := l.save(); err != nil {
		return err
	}
	for _, ns := range netnsNames(l.prefix, l.n) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addNetns(ns); err != nil {
			return err
		}
	}
	if err := l.wire(); err != nil {
		return err
	}
	for i := range l.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.start(i); err != nil {
			return err
		}
	}
	return nil
}

// abort tears down a lab Up failed to finish and returns cause, plus any
// error of the teardown.
func (l *Lab) abort(cause error) error {
	l.logger.Info("lab up failed, tearing down", "prefix", l.prefix, "err", cause)
	if _, err := Down(context.Background(), filepath.Dir(l.dir), l.prefix); err != nil {
		return errors.Join(cause, fmt.Errorf("tear down: %w", err))
	}
	return cause
}

// formSwarm is FormSwarm cut short when a daemon exits, which it would
// otherwise take for one still starting and wait for until ctx ends.
func (l *Lab) formSwarm(ctx context.Context, progress io.Writer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for ctx.Err() == nil {
			for _, n := range l.Nodes() {
				if !alive(n.PID, n.Start) {
					cancel(&NodeError{Node: n.Name, Err: errExited})
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(dialRetry):
			}
		}
	}()
	err := FormSwarm(ctx, l, l.managers, progress)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errExited) {
		return cause
	}
	return err
}

// errExited is why a node is not ready when its daemon is gone.
var errExited = errors.New("daemon exited")

// nodeError adds to an error of what Up was doing the last line of the
// log of the node it names, or else of the first node whose daemon died.
func (l *Lab) nodeError(what string, err error) error {
	name := ""
	var ne *NodeError
	if errors.As(err, &ne) {
		name = ne.Node
	} else {
		for _, n := range l.Nodes() {
			if !alive(n.PID, n.Start) {
				name = n.Name
				break
			}
		}
	}
	n, ok := l.Node(name)
	if !ok || n.Log == "" {
		return fmt.Errorf("%s: %w (logs under %s)", what, err, l.dir)
	}
	return fmt.Errorf("%s: %w; %s log ends %q (see %s)", what, err, n.Name, lastLine(n.Log), n.Log)
}

func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	data = bytes.TrimRight(data, "\n")
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	const max = 200
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// start starts the daemon of l.nodes[i] and records it.
func (l *Lab) start(i int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := &l.nodes[i]
	if err := startDaemon(n); err != nil {
		return err
	}
	l.logger.Info("daemon started", "node", n.Name, "pid", n.PID, "log", n.Log)
	l.logger.Debug("daemon argv", "node", n.Name, "argv", n.Argv)
	return writeState(l.dir, l.state())
}

// StopNode sends sig (SIGTERM, SIGINT or SIGKILL) to the daemon of node
// name, waits up to 10 s for it to exit and records it as stopped. A daemon
// that is not running is no error.
func (l *Lab) StopNode(name string, sig syscall.Signal) error {
	if sig != syscall.SIGTERM && sig != syscall.SIGINT && sig != syscall.SIGKILL {
		return fmt.Errorf("stop %s: signal %v: want SIGTERM, SIGINT or SIGKILL", name, sig)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.index(name)
	if i < 0 || i >= l.n {
		return fmt.Errorf("stop %s: no such node", name)
	}
	n := &l.nodes[i]
	if alive(n.PID, n.Start) {
		if err := syscall.Kill(n.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop %s: kill %d: %w", name, n.PID, err)
		}
		p := proc{pid: n.PID, start: n.Start}
		if left := waitGone(context.Background(), []proc{p}, stopTimeout); len(left) > 0 {
			return fmt.Errorf("stop %s: pid %d still running %s after %v", name, n.PID, stopTimeout, sig)
		}
	}
	l.logger.Info("daemon stopped", "node", name, "pid", n.PID, "signal", sig)
	n.PID, n.Start = 0, 0
	return writeState(l.dir, l.state())
}

// StartNode starts the daemon of node name again with the argv Up gave it,
// appending to the same log. It sends no swarm init or join: the daemon
// comes back into its swarm, if it was in one, from its run dir, as a
// restarted meshd does. It fails if the daemon is running.
func (l *Lab) StartNode(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	i := l.index(name)
	running := i >= 0 && i < l.n && alive(l.nodes[i].PID, l.nodes[i].Start)
	l.mu.Unlock()
	switch {
	case i < 0 || i >= l.n:
		return fmt.Errorf("start %s: no such node", name)
	case running:
		return fmt.Errorf("start %s: already running", name)
	}
	return l.start(i)
}

// WaitNodes returns a func for [Options.WaitReady] that calls ready for
// every node not yet ready, every interval, until all are. It fails with a
// [*NodeError] as soon as a daemon exits, and when ctx ends, naming the
// first node not ready and its last error. ready is called from one
// goroutine at a time and should honour ctx.
func WaitNodes(interval time.Duration, ready func(ctx context.Context, n Node) error) func(context.Context, *Lab) error {
	return func(ctx context.Context, l *Lab) error {
		return waitReady(ctx, l.Nodes(), interval, ready)
	}
}

// WaitNode is [WaitNodes] for node name alone, as after [Lab.StartNode].
func (l *Lab) WaitNode(ctx context.Context, name string, interval time.Duration, ready func(ctx context.Context, n Node) error) error {
	n, ok := l.Node(name)
	if !ok || n.RunDir == "" {
		return fmt.Errorf("wait for %s: no such node", name)
	}
	return waitReady(ctx, []Node{n}, interval, ready)
}

func waitReady(ctx context.Context, pending []Node, interval time.Duration, ready func(ctx context.Context, n Node) error) error {
	var last error
	for {
		var still []Node
		for _, n := range pending {
			if !alive(n.PID, n.Start) {
				return &NodeError{Node: n.Name, Err: errExited}
			}
			if err := ready(ctx, n); err != nil {
				if len(still) == 0 {
					last = err
				}
				still = append(still, n)
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return &NodeError{Node: pending[0].Name, Err: fmt.Errorf("not ready: %w (last: %w)", ctx.Err(), last)}
		case <-time.After(interval):
		}
	}
}

// growNeighbours raises this kernel's neighbour table limits as meshd
// does on a host of its own (lb.GrowNeighbours): the nodes share the
// table, each counting its sandboxes' and tasks' neighbours into it, and
// their namespaces do not show its limits, so their daemons leave them.
// At the kernel's 1024, 100 services of 2 tasks in a 3-node lab
// overflowed it (lb's doc). Like meshd, it raises and never lowers, and
// lab down leaves the limits as they are.
func (l *Lab) growNeighbours() {
	before, after, err := lb.GrowNeighbours(lb.ProcSysctls{}, lb.DefaultNeighbourMax)
	if err != nil {
		l.logger.Warn("neighbour table not raised", "size", after.String(), "reason", err)
	} else if before != after {
		l.logger.Info("neighbour table raised", "from", before.String(), "to", after.String())
	}
}
