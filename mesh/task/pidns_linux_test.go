package task

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// forking is a task whose command leaves a child behind: the shell's
// background sleep is not the process the init waits for.
var forking = []string{"sh", "-c", "sleep 1000 & exec sleep 1001"}

// runningPID starts Run on spec and returns the init's PID once it
// runs, with a stop function that cancels and waits for Run.
func runningPID(t *testing.T, spec Spec) (int, *recorder, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan struct{})
	go func() { Run(ctx, spec, rec.report); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	testutil.Eventually(t, 5*time.Second, "a running state", func() error {
		if rec.pid() == 0 {
			return fmt.Errorf("states %v", rec.names())
		}
		return nil
	})
	return rec.pid(), rec, stop
}

// sleeps waits until both sleeps of forking run in the PID namespace of
// init and returns their host PIDs.
func sleeps(t *testing.T, init int) []int {
	t.Helper()
	got := waitProcs(t, init, "both sleeps", func(p map[string]int) bool {
		return p["sleep 1000"] != 0 && p["sleep 1001"] != 0
	})
	return []int{got["sleep 1000"], got["sleep 1001"]}
}

// waitProcs waits until the processes in the PID namespace of init (see
// procsOf) are what ok wants, and returns them; want says what that is,
// for the failure.
func waitProcs(t *testing.T, init int, want string, ok func(map[string]int) bool) map[string]int {
	t.Helper()
	var got map[string]int
	testutil.Eventually(t, 5*time.Second, "the task's PID namespace holding "+want, func() error {
		if got = procsOf(t, init); !ok(got) {
			return fmt.Errorf("it holds %v", got)
		}
		return nil
	})
	return got
}

// procsOf is the processes in the PID namespace of a task's init, by
// command line (arguments joined by spaces), with their host PIDs.
func procsOf(t *testing.T, init int) map[string]int {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		t.Fatalf("task init %d: %v", init, err)
	}
	host, _ := os.Readlink("/proc/self/ns/pid")
	if ns == host {
		t.Fatalf("task init %d runs in the host's PID namespace %s", init, ns)
	}
	got := map[string]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); l != ns {
			continue
		}
		argv, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		got[strings.ReplaceAll(strings.TrimSuffix(string(argv), "\x00"), "\x00", " ")] = pid
	}
	return got
}

// gone reports whether pid no longer exists, as a process or a zombie.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// requireGone polls, as the kernel gives no event for another process's
// end, until every one of pids is gone.
func requireGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what+": every process gone", func() error {
		var left []string
		for _, pid := range pids {
			if !gone(pid) {
				argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				left = append(left, fmt.Sprintf("pid %d (%q)", pid, argv))
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still there: %s", strings.Join(left, ", "))
		}
		return nil
	})
}

// eachInit runs f with either init a host command can get: Debian's
// tini, which Run prefers where it is installed, and meshd's own.
func eachInit(t *testing.T, f func(t *testing.T, own bool)) {
	t.Helper()
	t.Run("tini", func(t *testing.T) {
		testutil.RequireTool(t, "tini")
		if tiniPath() == "" {
			t.Fatalf("tini is on the PATH but not at %v", tiniPaths)
		}
		f(t, false)
	})
	t.Run("meshd", func(t *testing.T) { f(t, true) })
}

// hostSpec is newSpec with the init chosen.
func hostSpec(t *testing.T, own bool, args ...string) Spec {
	t.Helper()
	spec := newSpec(t, args...)
	spec.OwnInit = own
	return spec
}

func TestStopKillsEveryProcessOfTheTask(t *testing.T) {
	testutil.RequireRoot(t)
	eachInit(t, testStopKillsEveryProcess)
}

func testStopKillsEveryProcess(t *testing.T, own bool) {
	init, rec, stop := runningPID(t, hostSpec(t, own, forking...))
	kids := sleeps(t, init)
	start := time.Now()
	stop()
	if d := time.Since(start); d > stopGrace+time.Second {
		t.Errorf("stop took %s", d)
	}
	requireGone(t, "after stop", append(kids, init)...)
	if got := rec.names(); got[len(got)-1] != "shutdown" {
		t.Errorf("states %v, want shutdown last", got)
	}
}

// SIGKILL of the init is what meshd's end does to it (Pdeathsig).
func TestKilledInitTakesTheTaskWithIt(t *testing.T) {
	testutil.RequireRoot(t)
	eachInit(t, testKilledInit)
}

func testKilledInit(t *testing.T, own bool) {
	init, rec, _ := runningPID(t, hostSpec(t, own, forking...))
	kids := sleeps(t, init)
	if err := syscall.Kill(init, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	requireGone(t, "after SIGKILL of the init", append(kids, init)...)
	testutil.Eventually(t, 5*time.Second, "a failed state", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, s := range rec.states {
			if s.State == "failed" {
				if s.Err != "task: non-zero exit (137)" {
					return fmt.Errorf("failure reason %q, want task: non-zero exit (137)", s.Err)
				}
				return nil
			}
		}
		return errors.New("none yet")
	})
}

// The command's status is the task's, even when its forked children run
// on; they do not once it has exited.
func TestTaskExitStatusWithChildrenLeft(t *testing.T) {
	testutil.RequireRoot(t)
	eachInit(t, testExitStatusWithChildrenLeft)
}

func testExitStatusWithChildrenLeft(t *testing.T, own bool) {
	for _, tc := range []struct {
		cmd, want string
	}{
		{"sleep 1000 & echo $! > /dev/null; exit 7", "task: non-zero exit (7)"},
		{"sleep 1000 & kill -9 $$", "task: non-zero exit (137)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			init, rec, stop := runningPID(t, hostSpec(t, own, "sh", "-c", tc.cmd))
			var reason string
			testutil.Eventually(t, 5*time.Second, "a failed state", func() error {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for _, s := range rec.states {
					if s.State == "failed" {
						reason = s.Err
						return nil
					}
				}
				return errors.New("none yet")
			})
			if !strings.Contains(reason, tc.want) {
				t.Errorf("failure reason %q, want %q", reason, tc.want)
			}
			requireGone(t, "after the command exited", init)
			stop()
		})
	}
}

func TestTaskSeesItsOwnProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	eachInit(t, testSeesItsOwnProcesses)
}

func testSeesItsOwnProcesses(t *testing.T, own bool) {
	spec := hostSpec(t, own, "sh", "-c", "echo pid=$$; for p in /proc/[0-9]*; do echo proc=${p#/proc/}; done")
	_, rec, stop := runningPID(t, spec)
	testutil.Eventually(t, 5*time.Second, "the command's end", func() error {
		if !strings.Contains(strings.Join(rec.names(), " "), "complete") {
			return errors.New("still running")
		}
		return nil
	})
	stop()
	f, err := os.Open(spec.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var procs []string
	var pid string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "proc="); ok {
			procs = append(procs, v)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "pid="); ok {
			pid = v
		}
	}
	// The init is 1 and the shell it started the only other process (its
	// PID may not be 2: meshd's init's Go runtime threads take some); the
	// host's processes are not there at all.
	if pid == "" || pid == "1" || strings.Join(procs, " ") != "1 "+pid {
		t.Errorf("the task's shell is pid %q and sees /proc %v, want 1 and itself only", pid, procs)
	}
}

// meshd's crash, for real: a process running Run is SIGKILLed, and
// every process of its task dies with it.
func TestSupervisorCrashTakesTheTaskWithIt(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, forking...)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), superviseEnv+"="+strings.Join([]string{spec.NetNS, spec.ResolvConf, spec.LogPath}, "|"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var init int
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "running "); ok {
			init, _ = strconv.Atoi(v)
			break
		}
	}
	if init == 0 {
		t.Fatal("the supervisor never reported a running task")
	}
	kids := sleeps(t, init)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	requireGone(t, "after the supervisor's SIGKILL", append(kids, init)...)
}

// superviseEnv makes the test binary a stand-in meshd that supervises the
// forking task in the namespace, resolv.conf and log its value names.
const superviseEnv = "MESHD_TEST_SUPERVISE"

func superviseMain(v string) {
	f := strings.Split(v, "|")
	spec := Spec{ID: "t1", Hostname: "abcdef012345", NetNS: f[0], ResolvConf: f[1], LogPath: f[2], Args: forking}
	Run(context.Background(), spec, func(s State) {
		if s.State == "running" {
			fmt.Printf("running %d\n", s.PID)
		}
	})
}

// TestTaskInitOverhead measures what a host command's task holds in
// memory besides the command: its init, PID 1 of the task, once the
// command runs. Under tini it must stay under 2 MB; meshd's own init, a Go
// runtime, is logged beside it.
func TestTaskInitOverhead(t *testing.T) {
	testutil.RequireRoot(t)
	rss := map[bool]int{}
	eachInit(t, func(t *testing.T, own bool) {
		init, _, stop := runningPID(t, hostSpec(t, own, forking...))
		sleeps(t, init) // the command and its child run
		want, err := os.Executable()
		if !own {
			want, err = tiniPath(), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", init))
		if exe != want {
			t.Fatalf("the task's init runs %s, want %s", exe, want)
		}
		rss[own] = vmRSS(t, init)
		t.Logf("init (%s) resident: %d kB", filepath.Base(exe), rss[own])
		stop()
	})
	if kb, ok := rss[false]; ok && kb >= 2048 {
		t.Errorf("tini as the task's init holds %d kB resident, want under 2048 kB", kb)
	}
}

// TestIdleTask: a shell image given no command idles. Where tini is
// installed, the task is tini and "sleep infinity", a few MB resident
// rather than a Go runtime's 15; with meshd's own init, the init waits
// in-process. Either way a stop ends it at SIGTERM, well before the
// SIGKILL that follows stopGrace later (a sleep as PID 1 would ignore
// SIGTERM).
func TestIdleTask(t *testing.T) {
	testutil.RequireRoot(t)
	eachInit(t, func(t *testing.T, own bool) {
		spec := hostSpec(t, own)
		spec.Image = "alpine"
		init, rec, stop := runningPID(t, spec)
		var procs map[string]int
		if own {
			want, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			waitExe(t, init, want)
			if procs = procsOf(t, init); len(procs) != 1 {
				t.Errorf("processes of the idle task: %v, want its init alone", procs)
			}
		} else {
			waitExe(t, init, tiniPath())
			// The sleep's PID: the one process besides the init.
			sleepPID := func(p map[string]int) int {
				for argv, pid := range p {
					if pid != init && strings.HasSuffix(argv, "sleep infinity") {
						return pid
					}
				}
				return 0
			}
			procs = waitProcs(t, init, "tini and sleep infinity alone", func(p map[string]int) bool {
				return sleepPID(p) != 0 && len(p) == 2
			})
			sleep := sleepPID(procs)
			tini, kid := vmRSS(t, init), vmRSS(t, sleep)
			t.Logf("resident: tini %d kB, sleep %d kB", tini, kid)
			if tini >= 2048 || tini+kid >= 4096 {
				t.Errorf("the idle task holds %d kB (tini) + %d kB (sleep), want tini under 2048 and both under 4096", tini, kid)
			}
		}
		start := time.Now()
		stop()
		if d := time.Since(start); d >= stopGrace {
			t.Errorf("stop took %s: the idle task waited for SIGKILL", d)
		}
		pids := []int{init}
		for _, pid := range procs {
			pids = append(pids, pid)
		}
		requireGone(t, "after stop", pids...)
		if got := rec.names(); got[len(got)-1] != "shutdown" {
			t.Errorf("states %v, want shutdown last", got)
		}
	})
}

// waitExe waits until process pid runs the program want: a task is
// reported running once its init has set the namespaces up, and the init
// execs tini, or an image's program, only after that.
func waitExe(t *testing.T, pid int, want string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("process %d running %s", pid, want), func() error {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != want {
			return fmt.Errorf("it runs %q (%v)", exe, err)
		}
		return nil
	})
}

// vmRSS is a process's resident set in kB, from /proc/PID/status.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestBuiltinImageNamedAfterIt: a built-in image's server, which runs in
// the init (meshd started again as /proc/self/exe), is named after its
// image in /proc/PID/comm, which ps, ss -p and meshctl trace show.
func TestBuiltinImageNamedAfterIt(t *testing.T) {
	testutil.RequireRoot(t)
	spec := newSpec(t, "--port", "8080")
	spec.Image = "whoami"
	init, _, _ := runningPID(t, spec)
	testutil.Eventually(t, 5*time.Second, "the init named whoami", func() error {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", init))
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(comm)); got != "whoami" {
			return fmt.Errorf("comm %q", got)
		}
		return nil
	})
}
