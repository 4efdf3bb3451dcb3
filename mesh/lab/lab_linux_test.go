package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// TestLab builds a 3-node lab run by fakeMeshd and walks through what the
// CLI and the tutorials do with it.
func TestLab(t *testing.T) {
	testutil.RequireRoot(t)
	before := hostSnapshot(t)
	opts := testOptions(t, 3)
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
		if diff := cmp.Diff(before, hostSnapshot(t)); diff != "" {
			t.Errorf("host namespace changed (-before +now):\n%s", diff)
		}
	})
	t.Run("daemons", func(t *testing.T) {
		for _, n := range l.Nodes() {
			if !sameNS(t, n.PID, "net", netnsPath(n.Netns)) {
				t.Errorf("%s daemon pid %d not in netns %s", n.Name, n.PID, n.Netns)
			}
			if !sameNS(t, n.PID, "mnt", "/proc/self/ns/mnt") {
				t.Errorf("%s daemon pid %d not in the host mount namespace", n.Name, n.PID)
			}
			if log, _ := os.ReadFile(n.Log); !strings.Contains(string(log), "fake meshd "+n.Name+" at "+n.Addr.String()) {
				t.Errorf("%s log %q, want the daemon's greeting", n.Name, log)
			}
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

func testUpAgain(t *testing.T, l *Lab, opts Options) {
	again, err := Up(context.Background(), opts)
	if !errors.Is(err, ErrAlreadyUp) || err.Error() != "lab already up with 3 nodes" {
		t.Errorf("second Up error = %v, want %q", err, "lab already up with 3 nodes")
	}
	if again == nil || again.Token() != l.Token() {
		t.Errorf("second Up returned %v, want the running lab", again)
	}
	other := opts
	other.Nodes = 2
	_, err = Up(context.Background(), other)
	if want := "lab is up with 3 nodes; run 'meshctl lab down' first"; err == nil || err.Error() != want {
		t.Errorf("Up with 2 nodes: got %v, want %q", err, want)
	}
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
	if err := l.StopNode("client", syscall.SIGTERM); err == nil {
		t.Errorf("StopNode(client) succeeded, want error")
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
