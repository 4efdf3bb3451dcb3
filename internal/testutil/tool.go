package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of a program a test runs (make deps
// installs them all). Without it the test skips, or with CI set fails:
// a CI run must not pass on checks it never made.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (make deps installs it): %v", name, err)
	}
	t.Skipf("%s not installed (make deps installs it): %v", name, err)
	return ""
}
