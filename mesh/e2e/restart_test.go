package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRestartPolicy checks Docker's task history and restart policy on a
// real lab: a task runs once; a failing one ends service create's wait
// with its error at once and is replaced, under a new task, as often as
// the policy allows, its predecessors listed as " \_ fail.1"; one that
// completes under on-failure is not replaced.
func TestRestartPolicy(t *testing.T) {
	l := newLab(t, 2)

	// settled holds cond over service ps for a few restart delays: what
	// must not change once the policy gave up.
	settled := func(t *testing.T, svc string, cond func(ps string) bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second * timeScale())
		for time.Now().Before(deadline) {
			ps, err := l.on("node1", "service", "ps", svc)
			if err != nil || !cond(ps) {
				t.Fatalf("service ps %s changed after the policy gave up: %v\n%s", svc, err, ps)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// reaches waits until service ps svc satisfies cond, logs it, and
	// checks it stays so.
	reaches := func(t *testing.T, svc string, timeout time.Duration, what string, cond func(string) bool) {
		t.Helper()
		var ps string
		eventually(t, timeout, what, func() (bool, string) {
			ps, _ = l.on("node1", "service", "ps", svc)
			return cond(ps), ps
		})
		t.Logf("service ps %s:\n%s", svc, ps)
		settled(t, svc, cond)
	}

	t.Run("a failing task is restarted max attempts times", func(t *testing.T) {
		start := time.Now()
		out, err := l.on("node1", "service", "create", "--name", "fail", "--restart-delay", "1s", "--restart-max-attempts", "2",
			"--", "sh", "-c", "exit 3")
		took := time.Since(start)
		t.Logf("service create (%s, err %v):\n%s", took.Round(time.Millisecond), err, out)
		if err == nil || !strings.Contains(out, "service fail: task fail.1 failed: task: non-zero exit (3)") {
			t.Fatalf("service create: err %v, want the task's failure\n%s", err, out)
		}
		if took > 5*time.Second*timeScale() {
			t.Errorf("service create took %s to report the failure, want under 5 s", took)
		}
		three := func(ps string) bool {
			return strings.Count(ps, "fail.1") == 3 && strings.Count(ps, `\_ fail.1`) == 2 &&
				strings.Count(ps, `"task: non-zero exit (3)"`) == 3 && strings.Count(ps, "Shutdown") == 3
		}
		reaches(t, "fail", 20*time.Second, "slot 1: the task and its two restarts, all failed and shut down", three)
	})

	t.Run("a task that completes is not restarted on-failure", func(t *testing.T) {
		out := l.must(t, "--node", "node1", "service", "create", "--name", "once", "--restart-condition", "on-failure",
			"--restart-delay", "1s", "--", "/bin/true")
		t.Logf("service create:\n%s", out)
		complete := func(ps string) bool {
			return strings.Count(ps, "once.1") == 1 && strings.Contains(ps, "Shutdown") && strings.Contains(ps, "Complete ")
		}
		reaches(t, "once", 10*time.Second, "once.1 complete and shut down", complete)
	})
}
