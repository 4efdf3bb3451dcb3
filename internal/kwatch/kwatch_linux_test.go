//go:build linux

package kwatch

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/vishvananda/netlink"
)

// counter counts the notifications per namespace.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) notify(ns string, k Kind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[ns+" "+k.String()]++
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func sh(t *testing.T, ns string, args ...string) {
	t.Helper()
	full := append([]string{"--net=" + ns}, args...)
	if out, err := exec.Command("nsenter", full...).CombinedOutput(); err != nil {
		t.Fatalf("nsenter %s: %v\n%s", strings.Join(full, " "), err, out)
	}
}

// TestWatchReportsRemovals removes, by hand, each kind of object meshd
// makes in a namespace and waits for the watcher to say so.
func TestWatchReportsRemovals(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "kw")
	c := &counter{n: map[string]int{}}
	w := New(c.notify, nil)
	defer w.Close()
	sh(t, ns, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	sh(t, ns, "ip", "link", "set", "d0", "up")
	sh(t, ns, "ip", "addr", "add", "10.9.0.1/24", "dev", "d0")
	sh(t, ns, "ip", "addr", "add", "10.9.0.2/32", "dev", "d0")
	sh(t, ns, "ip", "neigh", "add", "10.9.0.9", "lladdr", "02:00:00:00:00:09", "dev", "d0", "nud", "permanent")
	sh(t, ns, "iptables", "-t", "nat", "-N", "KWATCH")
	sh(t, ns, "iptables", "-t", "nat", "-A", "KWATCH", "-j", "RETURN")
	if err := w.Watch(ns); err != nil {
		t.Fatal(err)
	}
	if err := w.Watch(ns); err != nil {
		t.Fatalf("watching twice: %v", err)
	}
	steps := []struct {
		what string
		kind Kind
		argv []string
	}{
		{"address removed", Stack, []string{"ip", "addr", "del", "10.9.0.2/32", "dev", "d0"}},
		{"permanent neighbour removed", Stack, []string{"ip", "neigh", "del", "10.9.0.9", "dev", "d0"}},
		{"chain flushed", Rules, []string{"iptables", "-t", "nat", "-F", "KWATCH"}},
		{"link down", Stack, []string{"ip", "link", "set", "d0", "down"}},
		{"link removed", Stack, []string{"ip", "link", "del", "d0"}},
	}
	for _, s := range steps {
		key := ns + " " + s.kind.String()
		before := c.get(key)
		sh(t, ns, s.argv...)
		testutil.Eventually(t, 2*time.Second, s.what+" reported", func() error {
			if c.get(key) == before {
				return fmt.Errorf("no notification after %s", strings.Join(s.argv, " "))
			}
			return nil
		})
	}
	w.Unwatch(ns)
	if w.Watching(ns) {
		t.Fatal("still watching after Unwatch")
	}
}

func TestWatchMissingNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	w := New(func(string, Kind) {}, nil)
	defer w.Close()
	if err := w.Watch("/nonexistent/kwatch-ns"); err == nil {
		t.Fatal("watching a missing namespace: no error")
	}
}

// TestWatchSkipsOwnRemovals: a removal committed by a process the
// caller claims is not reported; one by any other process is.
func TestWatchSkipsOwnRemovals(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "kwo")
	for _, chain := range []string{"MINE", "THEIRS"} {
		sh(t, ns, "iptables", "-t", "nat", "-N", chain)
		sh(t, ns, "iptables", "-t", "nat", "-A", chain, "-j", "RETURN")
	}
	var mu sync.Mutex
	mine := map[int]bool{}
	c := &counter{n: map[string]int{}}
	w := New(c.notify, func(pid int) bool { mu.Lock(); defer mu.Unlock(); return mine[pid] })
	defer w.Close()
	if err := w.Watch(ns); err != nil {
		t.Fatal(err)
	}
	// Ours: the shell waits for a line before it becomes iptables (same
	// process), so its pid is claimed before it commits.
	own := exec.Command("nsenter", "--net="+ns, "sh", "-c", "read go && exec iptables -t nat -F MINE")
	stdin, err := own.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	mine[own.Process.Pid] = true
	mu.Unlock()
	_, _ = stdin.Write([]byte("go\n"))
	if err := own.Wait(); err != nil {
		t.Fatalf("iptables -F MINE: %v", err)
	}
	onlyTheirs(t, c, ns+" "+Rules.String(), func() { sh(t, ns, "iptables", "-t", "nat", "-F", "THEIRS") })
}

// onlyTheirs, once ours was made, makes another process's removal,
// waits for it to be reported and checks that ours was not: the socket
// reports in order, so once theirs is in, ours was read before it.
func onlyTheirs(t *testing.T, c *counter, key string, theirs func()) {
	t.Helper()
	theirs()
	testutil.Eventually(t, 2*time.Second, "another's removal reported", func() error {
		if c.get(key) == 0 {
			return fmt.Errorf("no notification")
		}
		return nil
	})
	if n := c.get(key); n != 1 {
		t.Errorf("%d notifications, want 1: our own removal was reported", n)
	}
}

// TestWatchSkipsOwnAddressRemovals: an address this process removes
// through netlink, and the local route the kernel removes with it, are
// not reported; an address another process removes is.
func TestWatchSkipsOwnAddressRemovals(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NetNS(t, testutil.NetNSDir(t), "kwa")
	sh(t, ns, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	sh(t, ns, "ip", "link", "set", "d0", "up")
	for _, a := range []string{"10.9.0.1/24", "10.9.0.2/32", "10.9.0.3/32"} {
		sh(t, ns, "ip", "addr", "add", a, "dev", "d0")
	}
	c := &counter{n: map[string]int{}}
	w := New(c.notify, nil)
	defer w.Close()
	if err := w.Watch(ns); err != nil {
		t.Fatal(err)
	}
	// Ours: a handle per call, as meshd's kernel seams open them.
	h, err := nshandle.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName("d0")
	if err == nil {
		err = h.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 0, 2), Mask: net.CIDRMask(32, 32)}})
	}
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	onlyTheirs(t, c, ns+" "+Stack.String(), func() { sh(t, ns, "ip", "addr", "del", "10.9.0.3/32", "dev", "d0") })
}
