package testutil

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update is registered here, once, so every package using Golden takes
// "go test ./pkg -update" without defining the flag itself (two
// definitions in one test binary would panic).
var update = flag.Bool("update", false, "rewrite golden files instead of comparing with them")

// Golden compares got with the file at path (relative to the package
// directory, e.g. "testdata/x.golden"). Under -update it writes got there
// instead, creating the directory, and compares nothing.
func Golden[T string | []byte](t testing.TB, path string, got T) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}
