//go:build linux

package lb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/vishvananda/netlink"
)

// Tests in real network namespaces. They need root and iptables; with CI
// set they fail rather than skip. Every namespace lives in a temporary
// directory and is removed, with all its links and rules, even on failure.

// newNamespaces makes fresh network namespaces with the given names and
// returns their files.
func newNamespaces(t testing.TB, names ...string) map[string]string {
	t.Helper()
	dir := testutil.NetNSDir(t)
	paths := map[string]string{}
	for _, n := range names {
		paths[n] = testutil.NetNS(t, dir, n)
	}
	// Before the namespaces go: no iptables-restore left in them.
	t.Cleanup(WaitBackground)
	return paths
}

// TestKernelSyncMatchesModel drives the real syncers in a namespace that
// already holds someone else's rules, and after every step compares the
// kernel's iptables-save with the FakeRules model given the same steps.
// Removing everything must give back the namespace's original rules.
// "buckets" runs the same steps with every shared chain of more than one
// entry in buckets, so that they come, go and move in and out of buckets.
func TestKernelSyncMatchesModel(t *testing.T) {
	t.Run("plain", kernelSyncMatchesModel)
	t.Run("buckets", func(t *testing.T) {
		withBucketThreshold(t, 1)
		kernelSyncMatchesModel(t)
	})
}

func kernelSyncMatchesModel(t *testing.T) {
	ns := newNamespaces(t, "sbox")["sbox"]
	ctx := context.Background()
	kernel := IPTables{NetNS: ns}
	if err := kernel.Apply(ctx, []byte(foreignRules)); err != nil {
		t.Fatal(err)
	}
	original := rawState(t, kernel)
	model := withForeignRules(t)

	realDP, err := NewDataPlane(ModeIPTables, ns)
	if err != nil {
		t.Fatal(err)
	}
	modelDP, _, _, _ := newFakePlane(t, ModeIPTables)
	modelDP.rules.rules = model
	realHost, modelHost := NewHostSyncer(kernel, WithConntrack(KernelConntrack{NetNS: ns})), NewHostSyncer(model, WithConntrack(NewFakeConntrack()))
	realTask, modelTask := NewTaskSyncer(kernel), NewTaskSyncer(model)

	three := ingressSandbox(wwwIngress, apiIngress, dns2Ingress)
	idle := ingressSandbox(wwwIngress, idleIngress)
	steps := []struct {
		name string
		sb   Sandbox
		host HostRules
		task TaskRules
	}{
		{"full set", worldTwo.ingress, worldTwo.host, worldTwo.task},
		{"add a service", three, worldTwo.host, worldTwo.task},
		{"remove services", worldOne.ingress, worldOne.host, worldOne.task},
		{"service without backend", idle, worldOne.host, worldOne.task},
		{"remove everything", ingressSandbox(), HostRules{}, TaskRules{}},
	}
	for _, st := range steps {
		for _, side := range []struct {
			dp   DataPlane
			host *HostSyncer
			task *TaskSyncer
		}{{realDP, realHost, realTask}, {modelDP, modelHost, modelTask}} {
			syncAll(t, st.name, side.dp, side.host, side.task, st.sb, st.host, st.task)
		}
		got := rawState(t, kernel)
		if diff := cmp.Diff(rawState(t, model), got); diff != "" {
			t.Errorf("%s: kernel differs from the model (-model +kernel):\n%s", st.name, diff)
		}
		if _, ok := got["nat"][svcChain(wwwIngress.Key)]; ok != (len(st.sb.Services) > 0) {
			t.Errorf("%s: chain of www present = %v, want %v", st.name, ok, !ok)
		}
	}
	if diff := cmp.Diff(original, rawState(t, kernel)); diff != "" {
		t.Errorf("removing everything left a trace (-original +now):\n%s", diff)
	}
	for key, want := range map[string]string{"ip_forward": "1", "tcp_early_demux": "0", "udp_early_demux": "0"} {
		var got string
		err = nsfile.Do(ns, func() error {
			b, err := os.ReadFile("/proc/sys/net/ipv4/" + key)
			got = strings.TrimSpace(string(b))
			return err
		})
		if err != nil || got != want {
			t.Errorf("%s in the sandbox = %q, %v; want %s", key, got, err, want)
		}
	}
}

func syncAll(t *testing.T, step string, dp DataPlane, h *HostSyncer, ts *TaskSyncer, sb Sandbox, hr HostRules, tr TaskRules) {
	t.Helper()
	ctx := context.Background()
	if err := dp.Sync(ctx, sb); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := h.Sync(ctx, hr); err != nil {
		t.Fatalf("%s: host: %v", step, err)
	}
	if err := ts.Sync(ctx, tr); err != nil {
		t.Fatalf("%s: task: %v", step, err)
	}
}

// TestKernelEmptyNamespaceStaysClean: from an untouched namespace, a sync
// and a removal leave no chain or rule at all.
func TestKernelEmptyNamespaceStaysClean(t *testing.T) {
	ns := newNamespaces(t, "sbox")["sbox"]
	ctx := context.Background()
	dp, err := NewDataPlane(ModeIPTables, ns)
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, dp, worldTwo.ingress)
	mustSync(t, dp, ingressSandbox())
	if err := NewHostSyncer(IPTables{NetNS: ns}, WithConntrack(KernelConntrack{NetNS: ns})).Sync(ctx, worldTwo.host); err != nil {
		t.Fatal(err)
	}
	if err := NewHostSyncer(IPTables{NetNS: ns}, WithConntrack(KernelConntrack{NetNS: ns})).Sync(ctx, HostRules{}); err != nil {
		t.Fatal(err) // a new syncer (a restarted agent) finds and removes the old rules
	}
	for table, chains := range rawState(t, IPTables{NetNS: ns}) {
		for chain, rules := range chains {
			if !isBuiltin(table, chain) || len(rules) > 0 {
				t.Errorf("left behind: %s/%s %q", table, chain, rules)
			}
		}
	}
}

// link is a veth end to configure: its namespace, name, address.
type link struct {
	ns, name string
	addr     netip.Prefix
	gw       netip.Addr // default route, if valid
	master   string     // bridge to enslave to
}

// addVeth makes a veth pair a (in a.ns) — b (in b.ns) and configures both.
func addVeth(t testing.TB, a, b link) {
	t.Helper()
	h, err := nshandle.Open(a.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, err := nsfile.Fd(b.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.name}, PeerName: b.name, PeerNamespace: netlink.NsFd(int(peer))}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", a.name, err)
	}
	configure(t, a)
	configure(t, b)
}

// addBridge makes bridge l.name in l.ns and configures it.
func addBridge(t testing.TB, l link) {
	t.Helper()
	h, err := nshandle.Open(l.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.name}}); err != nil {
		t.Fatalf("add bridge %s: %v", l.name, err)
	}
	configure(t, l)
}

func configure(t testing.TB, l link) {
	t.Helper()
	h, err := nshandle.Open(l.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dev, err := h.LinkByName(l.name)
	if err != nil {
		t.Fatalf("find %s: %v", l.name, err)
	}
	if l.master != "" {
		br, err := h.LinkByName(l.master)
		if err == nil {
			err = h.LinkSetMaster(dev, br)
		}
		if err != nil {
			t.Fatalf("enslave %s to %s: %v", l.name, l.master, err)
		}
	}
	if l.addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: l.addr.Addr().AsSlice(), Mask: net.CIDRMask(l.addr.Bits(), 32)}}
		if err := h.AddrAdd(dev, a); err != nil {
			t.Fatalf("address %s on %s: %v", l.addr, l.name, err)
		}
	}
	if err := h.LinkSetUp(dev); err != nil {
		t.Fatal(err)
	}
	if l.gw.IsValid() {
		if err := h.RouteAdd(&netlink.Route{Gw: l.gw.AsSlice(), LinkIndex: dev.Attrs().Index}); err != nil {
			t.Fatalf("default route via %s: %v", l.gw, err)
		}
	}
}

// serveName listens on port in ns and answers every connection with name.
func serveName(t *testing.T, ns, name string, port int) {
	t.Helper()
	serveLines(t, ns, port, func(net.Conn) string { return name })
}

// serveLines listens on port in ns and answers every connection with the
// line answer gives it.
func serveLines(t *testing.T, ns string, port int, answer func(net.Conn) string) {
	t.Helper()
	var ln net.Listener
	err := nsfile.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, answer(c))
			c.Close()
		}
	}()
}

// dial opens a connection from ns to addr and returns the first line.
func dial(ns string, addr netip.AddrPort) (string, error) {
	var line string
	err := nsfile.Do(ns, func() error {
		c, err := net.Dial("tcp4", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		line = strings.TrimSpace(string(buf[:n]))
		return err
	})
	return line, err
}
