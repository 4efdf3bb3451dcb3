package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond until it returns nil, and fails t if that has not
// happened within timeout, quoting what and cond's last error: the reason
// says what was still wrong, which a bare "timed out" would hide.
//
// Polling starts at 10ms and backs off to 200ms, so a fast in-memory
// condition is seen at once while a slow one (a process listing, a
// kernel dump) is not run in a tight loop. cond is always run at least
// once, and once more after the deadline, so a condition that became true
// late is not reported as a failure.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		expired := time.Now().After(deadline)
		err := cond()
		if err == nil {
			return
		}
		if expired {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(min(wait, time.Until(deadline)+time.Millisecond))
		wait = min(2*wait, 200*time.Millisecond)
	}
}
