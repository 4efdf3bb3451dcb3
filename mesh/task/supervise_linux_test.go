package task

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// The test binary stands in for meshd: Supervise re-executes
// /proc/self/exe with InitArg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		os.Exit(Main(os.Args[2:]))
	}
	if v := os.Getenv(superviseEnv); v != "" {
		superviseMain(v)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newSpec makes a namespace and a resolv.conf for one test task.
func newSpec(t *testing.T, args ...string) Spec {
	t.Helper()
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "abcdef012345")
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.11\noptions ndots:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Spec{ID: "t1", Hostname: "abcdef012345", NetNS: ns, Args: args, ResolvConf: resolv, LogPath: filepath.Join(dir, "task.log")}
}

type recorder struct {
	mu     sync.Mutex
	states []State
}

func (r *recorder) report(s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.states {
		out = append(out, s.State)
	}
	return out
}

func TestSuperviseRestartsAFailingTask(t *testing.T) {
	testutil.RequireRoot(t)
	old := MinBackoff
	MinBackoff = 50 * time.Millisecond
	t.Cleanup(func() { MinBackoff = old })
	spec := newSpec(t, "sh", "-c", "hostname; cat /etc/resolv.conf; ip -o link show | cut -d: -f2; exit 3")
	ctx, cancel := context.WithCancel(context.Background())
	var rec recorder
	done := make(chan struct{})
	go func() { Supervise(ctx, spec, rec.report); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(strings.Join(rec.names(), " "), "failed") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	got := strings.Join(rec.names(), " ")
	if !strings.HasPrefix(got, "starting running failed starting running failed") || !strings.HasSuffix(got, "shutdown") {
		t.Errorf("states %q, want starting running failed, again, ..., shutdown", got)
	}
	if err := rec.states[2].Err; !strings.Contains(err, "exit status 3") {
		t.Errorf("failure reason %q, want the exit status", err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	for _, want := range []string{"abcdef012345\n", "nameserver 127.0.0.11", " lo\n"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("task log lacks %q (hostname, resolv.conf, its own namespace):\n%s", want, log)
		}
	}
	if strings.Contains(string(log), "eth0") {
		t.Errorf("task saw the host's links:\n%s", log)
	}
	if h, _ := os.Hostname(); h == "abcdef012345" {
		t.Error("the task changed the host's hostname")
	}
}

func TestSuperviseStopsARunningTask(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, "sleep", "1000")
	ctx, cancel := context.WithCancel(context.Background())
	var rec recorder
	done := make(chan struct{})
	go func() { Supervise(ctx, spec, rec.report); close(done) }()
	var pid int
	for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rec.mu.Lock()
		for _, s := range rec.states {
			pid = max(pid, s.PID)
		}
		rec.mu.Unlock()
	}
	if pid == 0 {
		t.Fatalf("no running state: %v", rec.names())
	}
	start := time.Now()
	cancel()
	<-done
	if d := time.Since(start); d > stopGrace+time.Second {
		t.Errorf("stop took %s", d)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("task %d still alive after stop", pid)
	}
	if got := rec.names(); got[len(got)-1] != "shutdown" {
		t.Errorf("last state %q, want shutdown", got[len(got)-1])
	}
}
