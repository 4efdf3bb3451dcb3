package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	// ErrAlreadyUp is returned, wrapped as "lab already up with 3 nodes", with
	// the running lab by an [Up] that found it complete and the same size.
	ErrAlreadyUp = errors.New("lab already up")
	// ErrNotUp is returned by [Load] when the lab has no state file.
	ErrNotUp = errors.New("no lab is up")
	// ErrNotSupported is returned by every kernel operation off Linux.
	ErrNotSupported = errors.New("lab: not supported on this OS")
)

// Options says which lab [Up] builds. Only Nodes and MeshdPath (or Daemon)
// are required; Up does not keep opts, so the caller may reuse it.
type Options struct {
	// Prefix is put in front of every namespace name so that labs can coexist
	// (tests use "t<random>-"). Empty is the default lab: node1, client, ….
	// At most 8 of [a-z0-9-].
	Prefix string
	// Nodes is the number of meshd nodes, 1 to [MaxNodes].
	Nodes int
	// MeshdPath is the meshd binary. A name without a slash is looked up in
	// PATH. It must be executable unless Daemon is set.
	MeshdPath string
	// ExtraArgs is appended to every node's meshd command line.
	ExtraArgs []string
	// Managers is how many nodes, node1 first, are managers of the swarm
	// Up forms with [FormSwarm] once every daemon runs; the other nodes
	// join it as workers. 0 forms no swarm: every meshd then waits, as it
	// does on a machine just installed, for swarm init or join. At most
	// Nodes.
	Managers int
	// Progress, if not nil, receives a line for each swarm command Up
	// sends (see [FormSwarm]).
	Progress io.Writer
	// Root holds the lab directories; empty means [DefaultRoot]. It must be
	// absolute and short: each node's socket path must fit 107 bytes.
	Root string
	// Daemon, if set, returns the command started for node n instead of argv,
	// the meshd command line [DaemonArgv] built. Tests use it to start
	// stand-ins. It must not return an empty slice.
	Daemon func(n Node, argv []string) []string
	// WaitReady is called once every daemon is started and the swarm, if
	// any, formed, with the lab; nil means no wait. When it fails Up tears
	// the lab down and reports the failing node's log: return a
	// [*NodeError] to name the node. See [WaitNodes]. It runs with Up's
	// ctx, which should carry the deadline.
	WaitReady func(ctx context.Context, l *Lab) error
	// Logger receives progress at Info and Debug; nil discards.
	Logger *slog.Logger
}

// Node is one namespace of a lab: a meshd node or the client.
type Node struct {
	Name   string     `json:"name"`    // "node1" … or "client", without the prefix
	Netns  string     `json:"netns"`   // named namespace: prefix + Name
	Addr   netip.Addr `json:"addr"`    // eth0's address in 192.168.33.0/24
	RunDir string     `json:"run_dir"` // meshd's --run-dir; empty for the client
	Log    string     `json:"log"`     // daemon stdout and stderr; empty for the client
	Argv   []string   `json:"argv"`    // daemon command line, started with nsenter
	PID    int        `json:"pid"`     // daemon process; 0 when stopped
	// Start is the daemon's start time from /proc/<pid>/stat, so that a PID
	// reused by another process is never taken for the daemon.
	Start uint64 `json:"start_ticks"`
}

// NetnsPath is the file of the node's namespace (under /run/netns, as
// "ip netns" names it), for nsenter --net.
func (n Node) NetnsPath() string { return netnsPath(n.Netns) }

// NodeError is an error about one node, such as a daemon that exited or
// never became ready.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return e.Node + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// Lab is a lab that is up. Its methods may be called concurrently.
type Lab struct {
	prefix   string
	dir      string
	n        int
	managers int // Options.Managers: 0 when Up formed no swarm
	logger   *slog.Logger

	mu    sync.Mutex // guards the fields below and the state file
	nodes []Node     // node1…nodeN, then client
}

// Load returns the lab recorded under root (empty means [DefaultRoot]) for
// prefix. It fails with [ErrNotUp] when there is none, and does not check
// that the namespaces and daemons still exist.
func Load(root, prefix string) (*Lab, error) {
	dir, err := labDir(root, prefix)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if st.Prefix != prefix {
		return nil, fmt.Errorf("lab state in %s is for prefix %q, not %q", dir, st.Prefix, prefix)
	}
	return &Lab{prefix: prefix, dir: dir, n: st.NodeCount, managers: st.Managers,
		logger: slog.New(slog.DiscardHandler), nodes: st.Nodes}, nil
}

// Prefix returns the lab's namespace prefix; empty for the default lab.
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns the lab's directory: lab.json and one run dir per node.
func (l *Lab) Dir() string { return l.dir }

// Size returns the number of meshd nodes.
func (l *Lab) Size() int { return l.n }

// Managers returns how many nodes, node1 first, Up made managers of the
// swarm it formed; 0 when it formed none. Later swarm init, join,
// promote or leave sent by hand are not recorded.
func (l *Lab) Managers() int { return l.managers }

// describe says what the lab is made of: "3 nodes, 1 manager",
// "2 nodes, no swarm".
func (l *Lab) describe() string {
	s := plural(l.n, "node")
	if l.managers == 0 {
		return s + ", no swarm"
	}
	return s + ", " + plural(l.managers, "manager")
}

func plural(n int, noun string) string {
	if n != 1 {
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}

// Nodes returns the meshd nodes in order, without the client.
func (l *Lab) Nodes() []Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return cloneNodes(l.nodes[:l.n])
}

// Node returns the node called name ("node2", without the prefix) or the
// client ("client").
func (l *Lab) Node(name string) (Node, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.index(name)
	if i < 0 {
		return Node{}, false
	}
	return cloneNodes(l.nodes[i : i+1])[0], true
}

// Socket returns the API socket of node name, <run dir>/meshd.sock, or ""
// for the client and unknown names.
func (l *Lab) Socket(name string) string {
	n, ok := l.Node(name)
	if !ok || n.RunDir == "" {
		return ""
	}
	return filepath.Join(n.RunDir, socketFile)
}

// ExecCmd returns a command that runs argv on node name. On a meshd node it
// runs in the node's network namespace and in a mount namespace of its own in
// which the node's run dir is mounted on /var/run/meshd, with MESHD_SOCKET
// set, so the tutorials' "nsenter --net=/var/run/meshd/netns/…" work
// verbatim; /var/run/meshd is created on the host if missing, and stays
// empty there. On the client it runs in the client's network namespace only. An
// unknown node or empty argv gives a command whose Start fails.
func (l *Lab) ExecCmd(name string, argv []string) *exec.Cmd {
	n, ok := l.Node(name)
	if !ok || len(argv) == 0 {
		cmd := exec.Command("nsenter")
		cmd.Err = fmt.Errorf("lab exec on %q: no such node or empty command", name)
		return cmd
	}
	args := []string{"--net=" + netnsPath(n.Netns), "--"}
	if n.RunDir != "" {
		// slave: mounts meshd makes later in its run dir still show up here,
		// and the bind below never propagates back to the host.
		const script = `mkdir -p "$1" && mount --rbind "$0" "$1" && shift && exec "$@"`
		args = append(args, "unshare", "--mount", "--propagation", "slave", "--",
			"sh", "-c", script, n.RunDir, meshdRunDir)
	}
	cmd := exec.Command("nsenter", append(args, argv...)...)
	if n.RunDir != "" {
		cmd.Env = append(os.Environ(), "MESHD_SOCKET="+filepath.Join(n.RunDir, socketFile))
	}
	return cmd
}

// index returns the position of name in l.nodes, or -1. l.mu must be held.
func (l *Lab) index(name string) int {
	if name == clientName {
		return l.n
	}
	if i := nodeIndex(name, l.n); i > 0 {
		return i - 1
	}
	return -1
}

func (l *Lab) state() state {
	return state{
		Version:    stateVersion,
		Prefix:     l.prefix,
		NodeCount:  l.n,
		Managers:   l.managers,
		Namespaces: netnsNames(l.prefix, l.n),
		Nodes:      l.nodes,
	}
}

// save writes lab.json.
func (l *Lab) save() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return writeState(l.dir, l.state())
}

func cloneNodes(ns []Node) []Node {
	out := make([]Node, len(ns))
	for i, n := range ns {
		n.Argv = append([]string(nil), n.Argv...)
		out[i] = n
	}
	return out
}

// newLab lays out the lab opts asks for, without touching the system.
func newLab(opts Options, dir string) (*Lab, error) {
	l := &Lab{prefix: opts.Prefix, dir: dir, n: opts.Nodes, managers: opts.Managers, logger: opts.Logger}
	for i := 1; i <= opts.Nodes; i++ {
		run := filepath.Join(dir, nodeName(i))
		n := Node{Name: nodeName(i), Netns: opts.Prefix + nodeName(i), Addr: nodeAddr(i),
			RunDir: run, Log: filepath.Join(run, logFile)}
		n.Argv = DaemonArgv(opts.MeshdPath, i, run, opts.ExtraArgs)
		if opts.Daemon != nil {
			n.Argv = opts.Daemon(n, n.Argv)
		}
		if len(n.Argv) == 0 {
			return nil, fmt.Errorf("lab: Daemon returned no command for %s", n.Name)
		}
		l.nodes = append(l.nodes, n)
	}
	l.nodes = append(l.nodes, Node{Name: clientName, Netns: opts.Prefix + clientName, Addr: clientAddr()})
	return l, nil
}

// withDefaults validates opts and fills in defaults, naming the bad field.
func (opts Options) withDefaults() (Options, error) {
	if err := validPrefix(opts.Prefix); err != nil {
		return opts, fmt.Errorf("Options.Prefix: %w", err)
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return opts, fmt.Errorf("lab: Options.Nodes %d: want 1 to %d", opts.Nodes, MaxNodes)
	}
	if opts.Managers < 0 || opts.Managers > opts.Nodes {
		return opts, fmt.Errorf("lab: Options.Managers %d: want 0 (no swarm) to %d (Options.Nodes)", opts.Managers, opts.Nodes)
	}
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	dir, err := labDir(opts.Root, opts.Prefix)
	if err != nil {
		return opts, fmt.Errorf("Options.Root: %w", err)
	}
	if sock := filepath.Join(dir, nodeName(MaxNodes), socketFile); len(sock) > maxSunPath {
		return opts, fmt.Errorf("lab: Options.Root %q too long: socket path %s exceeds %d bytes", opts.Root, sock, maxSunPath)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Daemon != nil {
		return opts, nil
	}
	if opts.MeshdPath, err = executable(opts.MeshdPath); err != nil {
		return opts, fmt.Errorf("lab: Options.MeshdPath: %w", err)
	}
	return opts, nil
}

// executable resolves path (PATH lookup when it has no slash) to an absolute
// path of an executable regular file.
func executable(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty")
	}
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", err
		}
		path = p
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}
