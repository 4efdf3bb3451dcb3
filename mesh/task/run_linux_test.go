package task

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// The test binary stands in for meshd: Run re-executes
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

// testHosts is the hosts file of the test tasks, as the agent writes it.
const testHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" +
	"10.0.0.5\tabcdef012345\n"

// newSpec makes a namespace and the /etc files for one test task.
func newSpec(t *testing.T, args ...string) Spec {
	t.Helper()
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "abcdef012345")
	dir := t.TempDir()
	spec := Spec{ID: "t1", Hostname: "abcdef012345", NetNS: ns, Args: args, LogPath: filepath.Join(dir, "task.log"),
		ResolvConf: filepath.Join(dir, "resolv.conf"), HostsFile: filepath.Join(dir, "hosts"), HostnameFile: filepath.Join(dir, "hostname")}
	for path, content := range map[string]string{
		spec.ResolvConf:   "nameserver 127.0.0.11\noptions ndots:0\n",
		spec.HostsFile:    testHosts,
		spec.HostnameFile: spec.Hostname + "\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return spec
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

// pid is the highest PID the task has reported, 0 before it runs.
func (r *recorder) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid := 0
	for _, s := range r.states {
		pid = max(pid, s.PID)
	}
	return pid
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

// A task runs once: its end is reported as Docker does, and nothing
// starts it again.
func TestRunReportsTheEndOnce(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name, cmd, want, err string
		code                 int
	}{
		{"exit 3", "exit 3", "failed", "task: non-zero exit (3)", 3},
		{"exit 0", "true", "complete", "", 0},
		{"killed", "kill -9 $$", "failed", "task: non-zero exit (137)", 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := newSpec(t, "sh", "-c", tc.cmd)
			var rec recorder
			Run(context.Background(), spec, rec.report) // returns once the process ended
			got := strings.Join(rec.names(), " ")
			if want := "starting running " + tc.want; got != want {
				t.Errorf("states %q, want %q", got, want)
			}
			if last := rec.states[len(rec.states)-1]; last.Err != tc.err || last.ExitCode == nil || *last.ExitCode != tc.code {
				t.Errorf("error %q, exit code %s; want %q, %d", last.Err, codeString(last.ExitCode), tc.err, tc.code)
			}
		})
	}
}

func TestRunFailsToStart(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, "true")
	spec.NetNS = filepath.Join(t.TempDir(), "missing")
	var rec recorder
	Run(context.Background(), spec, rec.report)
	got := rec.names()
	if strings.Join(got, " ") != "starting failed" || !strings.Contains(rec.states[1].Err, "open netns") || rec.states[1].ExitCode != nil {
		t.Errorf("states %v (%q, exit code %s), want starting failed with the reason and no exit code", got,
			rec.states[len(rec.states)-1].Err, codeString(rec.states[len(rec.states)-1].ExitCode))
	}
}

// codeString prints an exit code that may be unknown.
func codeString(code *int) string {
	if code == nil {
		return "none"
	}
	return fmt.Sprint(*code)
}

func TestTaskSeesItsOwnSandbox(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, "sh", "-c", "hostname; cat /etc/resolv.conf; ip -o link show | cut -d: -f2")
	var rec recorder
	Run(context.Background(), spec, rec.report)
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

func TestRunStopsARunningTask(t *testing.T) {
	testutil.RequireRoot(t)
	pid, rec, stop := runningPID(t, newSpec(t, "sleep", "1000"))
	// tini forks the command once it has blocked the signals it passes
	// on: a SIGTERM before that, right after its exec, finds no handler,
	// and PID 1 of a namespace drops such a signal.
	waitProcs(t, pid, "sleep 1000", func(p map[string]int) bool { return p["sleep 1000"] != 0 })
	start := time.Now()
	stop()
	if d := time.Since(start); d >= stopGrace {
		t.Errorf("stop took %s: the SIGTERM did not end the task, the SIGKILL after %s did", d, stopGrace)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("task %d still alive after stop", pid)
	}
	// The init passes the stop's SIGTERM on to sleep, which dies of it:
	// 128+15, as docker stop shows for a container run with --init.
	rec.mu.Lock()
	last := rec.states[len(rec.states)-1]
	rec.mu.Unlock()
	if last.State != "shutdown" || last.ExitCode == nil || *last.ExitCode != 143 {
		t.Errorf("last state %q, exit code %s; want shutdown, 143", last.State, codeString(last.ExitCode))
	}
}

// A stop that comes as soon as the task is reported running, as
// "meshctl run -d" followed at once by "meshctl stop" makes it, ends the
// task by its SIGTERM too: the init may then still be setting up, or
// have just exec'd tini, which has not yet blocked the signals it waits
// for. PID 1 of a namespace drops a signal it neither catches nor
// blocks, and the Go runtime, catching one nobody asked for, exits 2.
func TestStopRightAfterStart(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name, image, tool string
		args              []string
		own               bool
		code              int // a server that stops on SIGTERM exits 0
	}{
		{"tini", "", "", []string{"sleep", "1000"}, false, 143},
		{"own init", "", "", []string{"sleep", "1000"}, true, 143},
		{"server in the init", "whoami", "", []string{"--port", "8080"}, false, 0},
		{"exec'd program", "redis", "redis-server", nil, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tool != "" {
				testutil.RequireTool(t, tc.tool)
			}
			for i := range 10 {
				spec := newSpec(t, tc.args...)
				spec.Image, spec.OwnInit = tc.image, tc.own
				ctx, cancel := context.WithCancel(context.Background())
				var rec recorder
				start := time.Now()
				Run(ctx, spec, func(s State) {
					rec.report(s)
					if s.State == "running" {
						cancel()
					}
				})
				cancel()
				d := time.Since(start)
				last := rec.states[len(rec.states)-1]
				if last.State != "shutdown" || last.ExitCode == nil || *last.ExitCode != tc.code || d >= stopGrace {
					t.Fatalf("run %d: last state %q, exit code %s after %s; want shutdown, %d, well within %s; log:\n%s",
						i, last.State, codeString(last.ExitCode), d.Round(time.Millisecond), tc.code, stopGrace, readLog(spec))
				}
			}
		})
	}
}

func TestParseSignalMasks(t *testing.T) {
	for _, tc := range []struct {
		name, status    string
		blocked, caught uint64
		err             bool
	}{
		{"tini", "Name:\ttini-static\nSigQ:\t0/31\nSigPnd:\t0000000000000000\nSigBlk:\tfffffffe3fcbfa07\nSigIgn:\t0000000000180000\nSigCgt:\t0000000000000000\n",
			0xfffffffe3fcbfa07, 0, false},
		{"go", "SigBlk:\t0000000000000000\nSigCgt:\tfffffffd7fc1feff\n", 0, 0xfffffffd7fc1feff, false},
		{"no masks", "Name:\tx\n", 0, 0, true},
		{"one mask", "SigBlk:\t0000000000000000\n", 0, 0, true},
		{"bad hex", "SigBlk:\tzz\nSigCgt:\t0\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocked, caught, err := parseSignalMasks(tc.status)
			if (err != nil) != tc.err || blocked != tc.blocked || caught != tc.caught {
				t.Errorf("got %x %x %v, want %x %x, error %v", blocked, caught, err, tc.blocked, tc.caught, tc.err)
			}
		})
	}
	if sigBit(syscall.SIGTERM) != 1<<14 {
		t.Errorf("SIGTERM's bit %x, want bit 14", sigBit(syscall.SIGTERM))
	}
}

// TestTaskGetsItsEnvironment: the service's variables reach the command
// (one may override PATH), and the host's environment does not.
func TestTaskGetsItsEnvironment(t *testing.T) {
	testutil.RequireRoot(t)
	t.Setenv("HOST_ONLY", "leak")
	spec := newSpec(t, "sh", "-c", `echo "FOO=$FOO EQ=$EQ HOST_ONLY=$HOST_ONLY PATH=$PATH"`)
	spec.Env = []string{"FOO=bar", "EQ=a=b", "PATH=/bin:/usr/bin"}
	var rec recorder
	Run(context.Background(), spec, rec.report)
	log, _ := os.ReadFile(spec.LogPath)
	if want := "FOO=bar EQ=a=b HOST_ONLY= PATH=/bin:/usr/bin\n"; !strings.Contains(string(log), want) {
		t.Errorf("task log %q, want %q", log, want)
	}
}

// run -w: a host command starts in its working directory; one that does
// not exist fails the task rather than being made on the host.
func TestTaskStartsInItsWorkDir(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, "pwd")
	spec.WorkDir = "/usr/share"
	var rec recorder
	Run(context.Background(), spec, rec.report)
	if log, _ := os.ReadFile(spec.LogPath); string(log) != "/usr/share\n" {
		t.Errorf("pwd with WorkDir /usr/share printed %q", log)
	}
	missing := newSpec(t, "pwd")
	missing.WorkDir = "/no/such/dir"
	var rec2 recorder
	Run(context.Background(), missing, rec2.report)
	if last := rec2.names(); len(last) == 0 || last[len(last)-1] != "failed" {
		t.Errorf("a missing WorkDir: states %v, want the task failed", last)
	}
	if _, err := os.Stat("/no/such/dir"); !os.IsNotExist(err) {
		t.Errorf("the missing WorkDir was made on the host: %v", err)
	}
}

// A task is reported running once its init has set it up: whoever enters
// it then (meshctl exec, a foreground run) sees its own resolv.conf, not
// the host's.
func TestRunningMeansSetUp(t *testing.T) {
	testutil.RequireRoot(t)
	for i := range 20 {
		spec := newSpec(t, "sleep", "5")
		ctx, cancel := context.WithCancel(context.Background())
		seen := make(chan string, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, spec, func(s State) {
				if s.State == "running" {
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/resolv.conf", s.PID))
					if err != nil {
						seen <- err.Error()
					} else {
						seen <- string(b)
					}
				}
			})
		}()
		got := <-seen
		cancel()
		<-done
		if got != "nameserver 127.0.0.11\noptions ndots:0\n" {
			t.Fatalf("run %d: resolv.conf when reported running: %q, want the task's", i, got)
		}
	}
}
