package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/mesh/api"
)

// TestMain lets the test binary stand in for meshd: Up starts
// "<test binary> --node-name node1 …", the argv DaemonArgv builds.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "--node-name" {
		os.Exit(fakeMeshd(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeMeshd does what the lab relies on of meshd: it bind-mounts a network
// namespace under its run dir (as meshd does with ingress_sbox), serves
// the swarm API on its socket (fakeSwarmd), says it is ready, and exits on
// SIGTERM, leaving the mount behind for Down to clean. "--fail nodeX"
// makes nodeX log an error and exit 1 instead.
func fakeMeshd(args []string) int {
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	name, run := flags["--node-name"], flags["--run-dir"]
	fmt.Printf("fake meshd %s at %s\n", name, flags["--advertise-addr"])
	if flags["--fail"] == name {
		fmt.Fprintf(os.Stderr, "listen tcp %s:2377: boom\n", flags["--advertise-addr"])
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if err := makeSandbox(filepath.Join(run, "netns", "ingress_sbox")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := serveFakeSwarmd(name, run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(run, "ready"), nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-sig
	return 0
}

// makeSandbox makes a namespace at path, replacing an earlier instance's
// as meshd sweeps at start.
func makeSandbox(path string) error {
	if err := nsfile.Remove(path); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_, err := nsfile.Ensure(path)
	return err
}

// readyFile is a WaitNodes check: the fake writes <run dir>/ready.
func readyFile(_ context.Context, n Node) error {
	_, err := os.Stat(filepath.Join(n.RunDir, "ready"))
	return err
}

// testPrefix is "t" + 4 random characters + "-": never a user's lab.
func testPrefix() string {
	return "t" + api.NewID()[:4] + "-"
}

// testOptions is a lab of n nodes under a fresh root, run by fakeMeshd.
func testOptions(t *testing.T, n int) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Prefix: testPrefix(), Nodes: n, MeshdPath: exe, Root: t.TempDir(),
		WaitReady: WaitNodes(20*time.Millisecond, readyFile)}
}

// upLab is Up with a cleanup, registered first, that takes the lab down and
// checks nothing is left, also when Up or the test fails.
func upLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	dir, err := labDir(opts.Root, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { downClean(t, opts.Root, opts.Prefix, dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Up(ctx, opts)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	return l
}

func downClean(t *testing.T, root, prefix, dir string) {
	t.Helper()
	if _, err := Down(context.Background(), root, prefix); err != nil {
		t.Errorf("Down: %v", err)
	}
	left, err := Leftovers(prefix, dir)
	if err != nil {
		t.Errorf("Leftovers: %v", err)
	}
	if len(left) > 0 {
		t.Errorf("got leftovers after Down: %q, want none", left)
	}
}

// hostSnapshot is the host namespace's links and routes, as ip prints them.
func hostSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"-br", "link"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		b.Write(out)
	}
	return b.String()
}

// checkLayout checks each namespace holds exactly what the package doc says.
func checkLayout(t *testing.T, l *Lab) {
	t.Helper()
	want := map[string][]string{
		l.prefix + underlaySuffix: {"br0 up", "lo down"},
		l.prefix + clientName:     {"eth0 up 192.168.33.1/24 mtu1500", "lo up 127.0.0.1/8"},
	}
	for _, n := range l.Nodes() {
		want[l.prefix+underlaySuffix] = append(want[l.prefix+underlaySuffix], n.Netns+" up br0")
		want[n.Netns] = []string{"eth0 up " + n.Addr.String() + "/24 mtu1500", "lo up 127.0.0.1/8"}
	}
	want[l.prefix+underlaySuffix] = append(want[l.prefix+underlaySuffix], l.prefix+clientName+" up br0")
	for ns, w := range want {
		got := describeLinks(t, ns)
		slices.Sort(w)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("links of %s mismatch (-want +got):\n%s", ns, diff)
		}
	}
}

// describeLinks renders each link of ns as "name up|down [addrs] [mtuN]
// [master]", sorted.
func describeLinks(t *testing.T, ns string) []string {
	t.Helper()
	all, err := links(ns)
	if err != nil {
		t.Fatalf("list links of %s: %v", ns, err)
	}
	var out []string
	for _, lk := range all {
		s := lk.Name + map[bool]string{true: " up", false: " down"}[lk.Up()]
		for _, a := range lk.Addrs {
			s += fmt.Sprintf(" %s/%d", a.Local, a.PrefixLen)
		}
		if lk.Name == ifName {
			s += fmt.Sprintf(" mtu%d", lk.MTU)
		}
		if lk.Master != "" {
			s += " " + lk.Master
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// run runs argv on node through ExecCmd and returns its output.
func run(t *testing.T, l *Lab, node string, argv ...string) string {
	t.Helper()
	out, err := l.ExecCmd(node, argv).CombinedOutput()
	if err != nil {
		t.Fatalf("on %s %v: %v: %s", node, argv, err, out)
	}
	return string(out)
}

func ping(t *testing.T, l *Lab, from, to string) {
	t.Helper()
	n, ok := l.Node(to)
	if !ok {
		t.Fatalf("no node %s", to)
	}
	run(t, l, from, "ping", "-c1", "-W1", n.Addr.String())
}

// sameNS reports whether process pid is in the namespace file path of kind
// ("net", "mnt").
func sameNS(t *testing.T, pid int, kind, path string) bool {
	t.Helper()
	a, err := nsID(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		t.Fatalf("stat ns of %d: %v", pid, err)
	}
	b, err := nsID(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return a == b
}

func pids(l *Lab) []proc {
	var ps []proc
	for _, n := range l.Nodes() {
		ps = append(ps, proc{pid: n.PID, start: n.Start})
	}
	return ps
}

func checkDead(t *testing.T, ps []proc) {
	t.Helper()
	for _, p := range ps {
		if alive(p.pid, p.start) {
			t.Errorf("pid %d still alive, want gone", p.pid)
		}
	}
}
