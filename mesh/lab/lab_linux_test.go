package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// TestLab builds a 3-node lab with 2 managers run by fakeMeshd and walks
// through what the CLI and the tutorials do with it.
func TestLab(t *testing.T) {
	testutil.RequireRoot(t)
	before := hostSnapshot(t)
	opts := testOptions(t, 3)
	opts.Managers = 2
	var progress strings.Builder
	opts.Progress = &progress
	l := upLab(t, opts)

	t.Run("layout", func(t *testing.T) {
		checkLayout(t, l)
		if err := l.CheckHermetic(); err != nil {
			t.Errorf("CheckHermetic: %v", err)
		}
		// The check must see a way out: a default route in the client.
		run(t, l, "client", "ip", "route", "add", "default", "dev", "eth0")
		err := l.CheckHermetic()
		if want := "netns " + l.Prefix() + "client: route"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckHermetic with a default route: got %v, want %q", err, want)
		}
		run(t, l, "client", "ip", "route", "del", "default")
		// The wire is a switch: no frame it forwards meets iptables.
		err = nsfile.Do(netnsPath(l.Prefix()+underlaySuffix), func() error {
			b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
			if errors.Is(err, os.ErrNotExist) {
				return nil // no br_netfilter on this machine
			}
			if err == nil && strings.TrimSpace(string(b)) != "0" {
				err = fmt.Errorf("bridge-nf-call-iptables is %s", strings.TrimSpace(string(b)))
			}
			return err
		})
		if err != nil {
			t.Errorf("underlay: %v", err)
		}
		if diff := cmp.Diff(before, hostSnapshot(t)); diff != "" {
			t.Errorf("host namespace changed (-before +now):\n%s", diff)
		}
	})
	t.Run("daemons", func(t *testing.T) {
		for _, n := range l.Nodes() {
			// The daemon's main thread, which /proc/PID/ns/net reads,
			// must stay in the node's namespace though it makes
			// ingress_sbox on another thread.
			if !sameNS(t, n.PID, "net", netnsPath(n.Netns)) {
				link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", n.PID))
				t.Errorf("%s daemon pid %d not in netns %s (it is in %s)", n.Name, n.PID, n.Netns, link)
			}
			if !sameNS(t, n.PID, "mnt", "/proc/self/ns/mnt") {
				t.Errorf("%s daemon pid %d not in the host mount namespace", n.Name, n.PID)
			}
			if log, _ := os.ReadFile(n.Log); !strings.Contains(string(log), "fake meshd "+n.Name+" at "+n.Addr.String()) {
				t.Errorf("%s log %q, want the daemon's greeting", n.Name, log)
			}
		}
	})
	t.Run("swarm", func(t *testing.T) {
		for _, n := range l.Nodes() {
			if strings.Contains(strings.Join(n.Argv, " "), "--join") || strings.Contains(strings.Join(n.Argv, " "), "--token") {
				t.Errorf("%s argv %q, want no swarm on the command line", n.Name, n.Argv)
			}
		}
		checkSwarmCalls(t, l)
		if got, want := strings.Count(progress.String(), "\n"), 3; got != want {
			t.Errorf("progress %q: %d lines, want %d (init and two joins)", progress.String(), got, want)
		}
		if m := mustLoad(t, opts).Managers(); m != 2 {
			t.Errorf("recorded managers %d, want 2", m)
		}
	})
	t.Run("ping", func(t *testing.T) {
		for _, n := range l.Nodes() {
			ping(t, l, "client", n.Name)
		}
		ping(t, l, "node1", "node3")
		ping(t, l, "node3", "node2")
	})
	t.Run("exec", func(t *testing.T) { testExec(t, l) })
	t.Run("up again", func(t *testing.T) { testUpAgain(t, l, opts) })
	t.Run("stop and start", func(t *testing.T) { testStopStart(t, l, opts) })
	t.Run("down", func(t *testing.T) { testDown(t, l, opts, before) })
}

// testDown takes the lab down twice and checks that the host is as before.
func testDown(t *testing.T, l *Lab, opts Options, before string) {
	ps := pids(l)
	removed, err := Down(context.Background(), opts.Root, opts.Prefix)
	if !removed || err != nil {
		t.Fatalf("Down = %v, %v, want true, nil", removed, err)
	}
	checkDead(t, ps)
	if left, err := Leftovers(l.Prefix(), l.Dir()); len(left) > 0 || err != nil {
		t.Errorf("Leftovers = %q, %v, want none", left, err)
	}
	if diff := cmp.Diff(before, hostSnapshot(t)); diff != "" {
		t.Errorf("host namespace changed (-before +now):\n%s", diff)
	}
	removed, err = Down(context.Background(), opts.Root, opts.Prefix)
	if removed || err != nil {
		t.Errorf("second Down = %v, %v, want false, nil", removed, err)
	}
	if _, err := Load(opts.Root, opts.Prefix); !errors.Is(err, ErrNotUp) {
		t.Errorf("Load after Down: got %v, want ErrNotUp", err)
	}
}

func testExec(t *testing.T, l *Lab) {
	n, _ := l.Node("node2")
	if err := os.WriteFile(filepath.Join(n.RunDir, "hello"), []byte("hi node2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run(t, l, "node2", "cat", "/var/run/meshd/hello"); got != "hi node2\n" {
		t.Errorf("cat /var/run/meshd/hello on node2 = %q, want %q", got, "hi node2\n")
	}
	if got, want := run(t, l, "node2", "sh", "-c", "echo $MESHD_SOCKET"), l.Socket("node2")+"\n"; got != want {
		t.Errorf("MESHD_SOCKET on node2 = %q, want %q", got, want)
	}
	// The tutorials' form, verbatim: the daemon's sandbox under its run dir.
	got := run(t, l, "node2", "nsenter", "--net=/var/run/meshd/netns/ingress_sbox", "ip", "-br", "link")
	if !strings.HasPrefix(got, "lo ") || strings.Count(got, "\n") != 1 {
		t.Errorf("links in node2's ingress_sbox = %q, want only lo", got)
	}
	if got := run(t, l, "client", "ip", "-br", "-4", "addr", "show", "eth0"); !strings.Contains(got, "192.168.33.1/24") {
		t.Errorf("client eth0 = %q, want 192.168.33.1/24", got)
	}
	if _, err := os.Stat(filepath.Join(meshdRunDir, "hello")); err == nil {
		t.Errorf("node2's run dir is visible at %s on the host, want it only inside ExecCmd", meshdRunDir)
	}
}

// checkSwarmCalls checks what FormSwarm sent each daemon of TestLab's lab:
// node1 made the swarm, node2 joined as a manager and node3 as a worker,
// each once.
func checkSwarmCalls(t *testing.T, l *Lab) {
	t.Helper()
	want := map[string][]string{
		"node1": {"init 192.168.33.10", "join-token manager", "join-token worker"},
		"node2": {"join 192.168.33.10:2377 manager"},
		"node3": {"join 192.168.33.10:2377 worker"},
	}
	got := map[string][]string{}
	for _, n := range l.Nodes() {
		got[n.Name] = calls(t, n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("swarm requests mismatch (-want +got):\n%s", diff)
	}
}

func testUpAgain(t *testing.T, l *Lab, opts Options) {
	again, err := Up(context.Background(), opts)
	if want := "lab already up with 3 nodes, 2 managers"; !errors.Is(err, ErrAlreadyUp) || err.Error() != want {
		t.Errorf("second Up error = %v, want %q", err, want)
	}
	if again == nil || again.Dir() != l.Dir() || again.Managers() != 2 {
		t.Errorf("second Up returned %v, want the running lab", again)
	}
	checkSwarmCalls(t, l) // nothing sent again
	for _, other := range []Options{{Nodes: 2, Managers: 2}, {Nodes: 3, Managers: 1}, {Nodes: 3}} {
		o := opts
		o.Nodes, o.Managers = other.Nodes, other.Managers
		_, err = Up(context.Background(), o)
		if want := "lab is up with 3 nodes, 2 managers; run 'meshctl lab down' first"; err == nil || err.Error() != want {
			t.Errorf("Up with %d nodes, %d managers: got %v, want %q", o.Nodes, o.Managers, err, want)
		}
	}
}

// swarmActive is a WaitNodes check: the node's daemon says it is in a swarm.
func swarmActive(ctx context.Context, n Node) error {
	info, err := api.NewClient(filepath.Join(n.RunDir, socketFile)).Info(ctx)
	if err != nil {
		return err
	}
	if info.LocalNodeState != "active" {
		return fmt.Errorf("%s is %s", n.Name, info.LocalNodeState)
	}
	return nil
}

func testStopStart(t *testing.T, l *Lab, opts Options) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		old, _ := l.Node("node2")
		if err := l.StopNode("node2", sig); err != nil {
			t.Fatalf("StopNode(%v): %v", sig, err)
		}
		checkDead(t, []proc{{pid: old.PID, start: old.Start}})
		loaded, err := Load(opts.Root, opts.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := loaded.Node("node2"); n.PID != 0 {
			t.Errorf("state after StopNode: pid %d, want 0", n.PID)
		}
		if _, err := Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "node2 daemon not running") {
			t.Errorf("Up with node2 stopped: got %v, want a broken-lab error", err)
		}
		if err := l.StartNode(context.Background(), "node2"); err != nil {
			t.Fatalf("StartNode: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = l.WaitNode(ctx, "node2", 20*time.Millisecond, swarmActive)
		cancel()
		if err != nil {
			t.Errorf("node2 not back in its swarm: %v", err)
		}
		n, _ := l.Node("node2")
		if !alive(n.PID, n.Start) || n.PID == old.PID {
			t.Errorf("node2 after StartNode: pid %d (was %d), want a new live daemon", n.PID, old.PID)
		}
		if got, _ := mustLoad(t, opts).Node("node2"); got.PID != n.PID {
			t.Errorf("state after StartNode: pid %d, want %d", got.PID, n.PID)
		}
		if err := l.StartNode(context.Background(), "node2"); err == nil {
			t.Errorf("second StartNode succeeded, want already running")
		}
	}
	checkSwarmCalls(t, l) // the restarts sent no init or join
	if err := l.StopNode("client", syscall.SIGTERM); err == nil {
		t.Errorf("StopNode(client) succeeded, want error")
	}
	if err := l.WaitNode(context.Background(), "client", time.Millisecond, swarmActive); err == nil {
		t.Errorf("WaitNode(client) succeeded, want error")
	}
	// A stopped daemon is never ready: WaitNode says so at once.
	if err := l.StopNode("node3", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNode(context.Background(), "node3", time.Millisecond, swarmActive); err == nil || err.Error() != "node3: daemon exited" {
		t.Errorf("WaitNode on a stopped node: got %v, want %q", err, "node3: daemon exited")
	}
	if err := l.StartNode(context.Background(), "node3"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitNodes(20*time.Millisecond, readyFile)(ctx, l); err != nil {
		t.Errorf("lab not ready after restarts: %v", err)
	}
}

func mustLoad(t *testing.T, opts Options) *Lab {
	t.Helper()
	l, err := Load(opts.Root, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestTwoLabs runs two labs side by side with sleep as the daemon, which
// Down can find only through lab.json or the node's namespace.
func TestTwoLabs(t *testing.T) {
	testutil.RequireRoot(t)
	var labs []*Lab
	for range 2 {
		opts := testOptions(t, 2)
		opts.Daemon = func(Node, []string) []string { return []string{"sleep", "1000"} }
		opts.WaitReady = nil
		labs = append(labs, upLab(t, opts))
	}
	a, b := labs[0], labs[1]
	if a.Prefix() == b.Prefix() {
		t.Fatalf("both labs have prefix %q", a.Prefix())
	}
	for _, l := range labs {
		ping(t, l, "client", "node2")
		if err := l.CheckHermetic(); err != nil {
			t.Errorf("CheckHermetic(%s): %v", l.Prefix(), err)
		}
	}
	ps := pids(a)
	if removed, err := Down(context.Background(), filepath.Dir(a.Dir()), a.Prefix()); !removed || err != nil {
		t.Fatalf("Down(%s) = %v, %v, want true, nil", a.Prefix(), removed, err)
	}
	checkDead(t, ps)
	if p := b.problems(); len(p) > 0 {
		t.Errorf("lab %s after Down of %s: %q, want intact", b.Prefix(), a.Prefix(), p)
	}
	ping(t, b, "node1", "node2")
}

// TestUpFailsReady checks that Up whose WaitReady fails leaves nothing and
// says which node failed and where its log is.
func TestUpFailsReady(t *testing.T) {
	testutil.RequireRoot(t)
	opts := testOptions(t, 3)
	opts.ExtraArgs = []string{"--fail", "node2"}
	dir, err := labDir(opts.Root, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { downClean(t, opts.Root, opts.Prefix, dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Up(ctx, opts)
	for _, want := range []string{"node2: daemon exited", "boom", filepath.Join(dir, "node2", logFile)} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Up error = %v, want it to contain %q", err, want)
		}
	}
	if left, err := Leftovers(opts.Prefix, dir); len(left) > 0 || err != nil {
		t.Errorf("Leftovers after failed Up = %q, %v, want none", left, err)
	}
}

// TestUpFailsSwarm checks that a daemon dying while the swarm is formed
// ends Up at once, naming it, instead of Up waiting for its socket until
// the deadline.
func TestUpFailsSwarm(t *testing.T) {
	testutil.RequireRoot(t)
	opts := testOptions(t, 2)
	opts.Managers = 1
	opts.ExtraArgs = []string{"--fail", "node2"}
	dir, err := labDir(opts.Root, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { downClean(t, opts.Root, opts.Prefix, dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Up(ctx, opts)
	for _, want := range []string{"form the swarm: node2: daemon exited", "boom"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Up error = %v, want it to contain %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Up took %v to fail, want it to see the daemon exit", d)
	}
}

// TestDownWithoutState checks that Down finds everything by name when
// lab.json is lost, including the namespaces the daemons mounted.
func TestDownWithoutState(t *testing.T) {
	testutil.RequireRoot(t)
	opts := testOptions(t, 2)
	l := upLab(t, opts)
	ps := pids(l)
	if err := os.WriteFile(filepath.Join(l.Dir(), stateFile), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "parse lab state") {
		t.Errorf("Up over a damaged lab: got %v, want a parse error", err)
	}
	if err := os.Remove(filepath.Join(l.Dir(), stateFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "leftovers") {
		t.Errorf("Up over a lab without state: got %v, want a leftovers error", err)
	}
	if removed, err := Down(context.Background(), opts.Root, opts.Prefix); !removed || err != nil {
		t.Fatalf("Down = %v, %v, want true, nil", removed, err)
	}
	checkDead(t, ps)
}
