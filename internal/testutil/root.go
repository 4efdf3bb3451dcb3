package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips t unless the test runs as root. With CI set (to
// anything) it fails instead: a CI run that silently skipped every kernel
// test would pass without testing anything.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root (CI is set: failing, not skipping)")
	}
	t.Skip("needs root")
}
