package testutil

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// LabCommands is for the TestMain of a package whose tests run meshd and
// meshctl as a user does (labs, the tutorials' scripts). It returns the
// directory holding both: $MESHD_E2E_BIN when set (the VM suite ships them
// prebuilt), else a temporary directory where they are built from this
// checkout, once per test binary, so that a stale bin/ is never what is
// tested. remove deletes what was built.
//
// Without root, or under -short, it builds nothing and returns "": the
// tests that need the binaries skip or fail in [RequireRoot] before they
// look for them.
func LabCommands() (dir string, remove func(), err error) {
	remove = func() {}
	if dir := os.Getenv("MESHD_E2E_BIN"); dir != "" {
		return dir, remove, nil
	}
	if !flag.Parsed() {
		flag.Parse() // for testing.Short
	}
	if os.Geteuid() != 0 || testing.Short() {
		return "", remove, nil
	}
	dir, err = os.MkdirTemp("", "meshd-bin")
	if err != nil {
		return "", remove, err
	}
	remove = func() { os.RemoveAll(dir) }
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, name := range []string{"meshd", "meshctl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			remove()
			return "", func() {}, fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
	}
	return dir, remove, nil
}
