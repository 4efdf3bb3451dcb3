package nsfile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestNamespaceFileLifecycle(t *testing.T) {
	dir := testutil.NetNSDir(t) // removes what is left on failure
	path := filepath.Join(dir, "1-abcdef0123")

	created, err := nsfile.Ensure(path)
	if err != nil || !created {
		t.Fatalf("Ensure = %v, %v; want true, nil", created, err)
	}
	if created, err := nsfile.Ensure(path); err != nil || created {
		t.Fatalf("second Ensure = %v, %v; want false, nil", created, err)
	}
	if !nsfile.Exists(path) {
		t.Fatal("Exists = false after Ensure")
	}
	err = nsfile.Do(path, func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := nshandle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName("probe0"); err != nil {
		t.Errorf("link made by Do not seen through Handle: %v", err)
	}
	if _, err := netlink.LinkByName("probe0"); err == nil {
		t.Error("link made inside the namespace is visible outside it")
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&unix.IFF_UP == 0 {
		t.Errorf("lo not up in the new namespace: %v", err)
	}
	names, err := nsfile.List(dir)
	if err != nil || len(names) != 1 || names[0] != "1-abcdef0123" {
		t.Errorf("List = %v, %v", names, err)
	}
	if err := nsfile.Remove(path); err != nil {
		t.Fatal(err)
	}
	if nsfile.Exists(path) {
		t.Error("namespace still there after Remove")
	}
	if err := nsfile.Remove(path); err != nil {
		t.Errorf("second Remove = %v, want nil", err)
	}
}

// TestMainThreadKeepsItsNamespace: the goroutines Ensure and Do lock and
// let die must never run on the main thread, whose namespace is the one
// /proc/PID/ns/net shows. Before the main goroutine held it, a lab daemon
// was once found "in" its own ingress_sbox.
func TestMainThreadKeepsItsNamespace(t *testing.T) {
	dir := testutil.NetNSDir(t)
	pid := fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	before, err := os.Readlink(pid)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		path := filepath.Join(dir, fmt.Sprintf("main-%d", i))
		if _, err := nsfile.Ensure(path); err != nil {
			t.Fatal(err)
		}
		if err := nsfile.Do(path, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.Readlink(pid); now != before {
			t.Fatalf("after %d namespaces the process is in %s, was in %s", i+1, now, before)
		}
		if err := nsfile.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}
