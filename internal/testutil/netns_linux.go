//go:build linux

package testutil

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/internal/nsfile"
	"golang.org/x/sys/unix"
)

// NetNSDir returns a new temporary directory for namespace files, made a
// shared mount point as nsfile.PrepareDir does. It calls RequireRoot.
//
// When the test ends, pass or fail, every file below the directory is
// removed as a namespace (in subdirectories too: the code under test may
// keep its own namespaces there), and the directories that became mount
// points are unmounted, so no namespace outlives the test.
func NetNSDir(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if err := nsfile.PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { teardown(t, dir) })
	return dir
}

// NetNS makes a new network namespace file named name in dir (from
// [NetNSDir]) and returns its path. NetNSDir's cleanup removes it.
func NetNS(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if _, err := nsfile.Ensure(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// teardown removes every namespace file below dir and unmounts the
// directories, deepest first. nsfile.Remove is fine with a plain file.
func teardown(t testing.TB, dir string) {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		return nsfile.Remove(path)
	})
	if err != nil {
		t.Errorf("remove namespaces under %s: %v", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// EINVAL: not a mount point (a subdirectory nobody mounted).
		if err := unix.Unmount(dirs[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("umount %s: %v", dirs[i], err)
		}
	}
}
