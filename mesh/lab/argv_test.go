package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Address plan (the tutorials'): underlay 192.168.33.0/24, client .1,
// node<i> .(9+i).

func TestDaemonArgv(t *testing.T) {
	tests := []struct {
		name  string
		i     int
		extra []string
		want  []string
	}{
		{
			name: "first node: no swarm on the command line",
			i:    1,
			want: []string{"/usr/bin/meshd", "--node-name", "node1", "--advertise-addr", "192.168.33.10",
				"--run-dir", "/run/meshd-lab/default/node1"},
		},
		{
			name:  "third node: no join either, extra args last",
			i:     3,
			extra: []string{"--lb-mode", "iptables"},
			want: []string{"/usr/bin/meshd", "--node-name", "node3", "--advertise-addr", "192.168.33.12",
				"--run-dir", "/run/meshd-lab/default/node3", "--lb-mode", "iptables"},
		},
		{
			name: "last node",
			i:    MaxNodes,
			want: []string{"/usr/bin/meshd", "--node-name", "node50", "--advertise-addr", "192.168.33.59",
				"--run-dir", "/run/meshd-lab/default/node50"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := filepath.Join("/run/meshd-lab/default", nodeName(tt.i))
			got := DaemonArgv("/usr/bin/meshd", tt.i, run, tt.extra)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DaemonArgv(%d) mismatch (-want +got):\n%s", tt.i, diff)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"t1a2b3-", true},
		{"abcdefgh", true},
		{"abcdefghi", false},
		{"Upper", false},
		{"../x", false},
		{"a_b", false},
		{"default", false},
	}
	for _, tt := range tests {
		err := validPrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("validPrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}

func TestNodeIndex(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"node1", 1}, {"node3", 3}, {"node4", 0}, {"node0", 0}, {"node01", 0},
		{"node", 0}, {"client", 0}, {"tnode1", 0}, {"node-1", 0},
	}
	for _, tt := range tests {
		if got := nodeIndex(tt.name, 3); got != tt.want {
			t.Errorf("nodeIndex(%q, 3) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestLabNetnsRE(t *testing.T) {
	tests := []struct {
		prefix, name string
		want         bool
	}{
		{"", "node1", true},
		{"", "lab-underlay", true},
		{"", "client", true},
		{"", "tx-node1", false}, // another lab's
		{"tx-", "tx-node12", true},
		{"tx-", "node1", false},
		{"tx-", "tx-node0", false},
		{"t", "tnode1", true},
		{"t", "tx-node1", false},
		{"", "ingress_sbox", false},
	}
	for _, tt := range tests {
		if got := labNetnsRE(tt.prefix).MatchString(tt.name); got != tt.want {
			t.Errorf("labNetnsRE(%q) matches %q = %v, want %v", tt.prefix, tt.name, got, tt.want)
		}
	}
}

func TestOptionsWithDefaults(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "meshd")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		err  string // substring; empty means valid
	}{
		{name: "valid", opts: Options{Nodes: 3, MeshdPath: exe}},
		{name: "path lookup", opts: Options{Nodes: 1, MeshdPath: "sh"}},
		{name: "zero nodes", opts: Options{Nodes: 0, MeshdPath: exe}, err: "Options.Nodes 0"},
		{name: "too many nodes", opts: Options{Nodes: 51, MeshdPath: exe}, err: "Options.Nodes 51"},
		{name: "every node a manager", opts: Options{Nodes: 3, Managers: 3, MeshdPath: exe}},
		{name: "more managers than nodes", opts: Options{Nodes: 3, Managers: 4, MeshdPath: exe}, err: "Options.Managers 4: want 0 (no swarm) to 3"},
		{name: "negative managers", opts: Options{Nodes: 3, Managers: -1, MeshdPath: exe}, err: "Options.Managers -1"},
		{name: "bad prefix", opts: Options{Prefix: "A", Nodes: 1, MeshdPath: exe}, err: "Options.Prefix"},
		{name: "no meshd", opts: Options{Nodes: 1}, err: "Options.MeshdPath"},
		{name: "meshd not executable", opts: Options{Nodes: 1, MeshdPath: plain}, err: "not an executable"},
		{name: "meshd missing", opts: Options{Nodes: 1, MeshdPath: "/nonexistent/meshd"}, err: "Options.MeshdPath"},
		{name: "daemon without meshd", opts: Options{Nodes: 1, Daemon: func(Node, []string) []string { return nil }}},
		{name: "relative root", opts: Options{Nodes: 1, MeshdPath: exe, Root: "lab"}, err: "not absolute"},
		{name: "long root", opts: Options{Nodes: 1, MeshdPath: exe, Root: "/" + strings.Repeat("x", 90)}, err: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.opts.withDefaults()
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestNewLabLayout(t *testing.T) {
	opts := Options{Prefix: "tq-", Nodes: 2, MeshdPath: "/bin/meshd",
		Daemon: func(n Node, argv []string) []string { return append([]string{"stand-in"}, argv[1:3]...) }}
	l, err := newLab(opts, "/run/meshd-lab/tq-")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, name := range []string{"node1", "node2", "client"} {
		n, ok := l.Node(name)
		if !ok {
			t.Fatalf("Node(%q) not found", name)
		}
		got = append(got, strings.Join([]string{n.Name, n.Netns, n.Addr.String(), n.RunDir, n.Log,
			strings.Join(n.Argv, " "), l.Socket(name)}, "|"))
	}
	want := []string{
		"node1|tq-node1|192.168.33.10|/run/meshd-lab/tq-/node1|/run/meshd-lab/tq-/node1/meshd.log|stand-in --node-name node1|/run/meshd-lab/tq-/node1/meshd.sock",
		"node2|tq-node2|192.168.33.11|/run/meshd-lab/tq-/node2|/run/meshd-lab/tq-/node2/meshd.log|stand-in --node-name node2|/run/meshd-lab/tq-/node2/meshd.sock",
		"client|tq-client|192.168.33.1||||",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layout mismatch (-want +got):\n%s", diff)
	}
	if _, ok := l.Node("node3"); ok {
		t.Errorf("Node(node3) found in a 2-node lab")
	}
	if diff := cmp.Diff([]string{"tq-node1", "tq-node2", "tq-client", "tq-lab-underlay"}, l.state().Namespaces); diff != "" {
		t.Errorf("namespaces mismatch (-want +got):\n%s", diff)
	}
}

func TestExecCmdArgv(t *testing.T) {
	l, err := newLab(Options{Prefix: "tq-", Nodes: 2, MeshdPath: "/bin/meshd"}, "/run/meshd-lab/tq-")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node string
		want []string
		env  string
	}{
		{
			node: "node2",
			want: []string{"nsenter", "--net=/run/netns/tq-node2", "--", "unshare", "--mount", "--propagation", "slave", "--",
				"sh", "-c", `mkdir -p "$1" && mount --rbind "$0" "$1" && shift && exec "$@"`,
				"/run/meshd-lab/tq-/node2", "/var/run/meshd", "ip", "-br", "addr"},
			env: "MESHD_SOCKET=/run/meshd-lab/tq-/node2/meshd.sock",
		},
		{
			node: "client",
			want: []string{"nsenter", "--net=/run/netns/tq-client", "--", "ip", "-br", "addr"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			cmd := l.ExecCmd(tt.node, []string{"ip", "-br", "addr"})
			if cmd.Err != nil {
				t.Fatalf("ExecCmd: %v", cmd.Err)
			}
			if diff := cmp.Diff(tt.want, cmd.Args); diff != "" {
				t.Errorf("argv mismatch (-want +got):\n%s", diff)
			}
			var env string
			for _, e := range cmd.Env {
				if strings.HasPrefix(e, "MESHD_SOCKET=") {
					env = e
				}
			}
			if env != tt.env {
				t.Errorf("got env %q, want %q", env, tt.env)
			}
		})
	}
	if err := l.ExecCmd("node9", []string{"true"}).Start(); err == nil {
		t.Errorf("ExecCmd on unknown node started, want error")
	}
	if err := l.ExecCmd("node1", nil).Start(); err == nil {
		t.Errorf("ExecCmd with empty argv started, want error")
	}
}
