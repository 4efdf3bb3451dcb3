package testutil

import (
	"os"
	"testing"
)

// RequireRoot marks a test that needs the kernel (namespaces, links,
// iptables) or a lab. It skips t under -short (make unit: the fast tests,
// no root needed) and when not root; with CI set (to anything) and not
// root it fails instead: a CI run that silently skipped every kernel test
// would pass without testing anything.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no kernel or lab tests")
	}
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root (CI is set: failing, not skipping)")
	}
	t.Skip("needs root")
}
