//go:build linux

package testutil

import (
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/internal/nsfile"
)

// TestNetNSCleanup checks that the fixture's cleanup removes namespaces
// it made and ones the code under test made in a subdirectory.
func TestNetNSCleanup(t *testing.T) {
	var dir, own, nested string
	t.Run("fixture", func(t *testing.T) {
		dir = NetNSDir(t)
		own = NetNS(t, dir, "a")
		sub := filepath.Join(dir, "sub")
		if err := nsfile.PrepareDir(sub); err != nil {
			t.Fatal(err)
		}
		nested = NetNS(t, sub, "b")
		for _, p := range []string{own, nested} {
			if !nsfile.Exists(p) {
				t.Errorf("%s is not a namespace", p)
			}
		}
	})
	if dir == "" {
		t.Skip("fixture skipped")
	}
	for _, p := range []string{own, nested} {
		if nsfile.Exists(p) {
			t.Errorf("%s still a namespace after cleanup", p)
		}
	}
}
