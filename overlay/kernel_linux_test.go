//go:build linux

package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/ipam"
	"github.com/vishvananda/netlink"
)

// The root tests build everything in namespace files under a temporary
// directory and never touch the machine's own namespace: each "node" has
// a host namespace of its own (where its VXLAN sockets live), the nodes
// are joined by a veth underlay 192.168.33.0/24 as in the tutorials, and
// each task sandbox is one more namespace.

// needTools fails the test when a tool the checks shell out to is missing.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"nsenter", "ip", "bridge", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps installs it): %v", tool, err)
		}
	}
}

// testLab is a temporary directory of namespace files; everything in it
// is removed when the test ends, whatever happened.
type testLab struct {
	dir string
}

func newTestLab(t *testing.T) *testLab {
	t.Helper()
	l := &testLab{dir: testutil.NetNSDir(t)}
	needTools(t)
	return l
}

func (l *testLab) netns(t *testing.T, name string) string {
	t.Helper()
	return testutil.NetNS(t, l.dir, name)
}

// underlay joins two host namespaces with a veth, ul0 on both sides.
func (l *testLab) underlay(t *testing.T, ns1 string, a1 netip.Prefix, ns2 string, a2 netip.Prefix) {
	t.Helper()
	h1, err := nshandle.Open(ns1)
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	fd, err := nsfile.Fd(ns2)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}, PeerName: "ul0", PeerNamespace: netlink.NsFd(fd)}
	if err := h1.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	run(t, ns1, "ip", "addr", "add", a1.String(), "dev", "ul0")
	run(t, ns1, "ip", "link", "set", "ul0", "up")
	run(t, ns2, "ip", "addr", "add", a2.String(), "dev", "ul0")
	run(t, ns2, "ip", "link", "set", "ul0", "up")
}

// run runs a command inside the namespace file ns and returns its stdout.
func run(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := try(ns, args...)
	if err != nil {
		t.Fatalf("nsenter --net=%s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// try runs a command in ns and returns what it printed on stdout; what
// it printed on stderr goes into the error. Output compared must leave
// stderr out: naming a link's peer namespace, ip reads every file in
// /run/netns, where other packages' labs come and go, and says on stderr
// when one vanished under it ("Peer netns reference is invalid").
func try(ns string, args ...string) (string, error) {
	var stderr strings.Builder
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s:\n%s\nwant it to contain %q", what, got, w)
		}
	}
}

// mustHaveLine wants a line of got holding all parts, in order. ("bridge
// fdb" puts "link-netnsid 0" between the destination and "self" when the
// VXLAN socket lives in another namespace, as it does here.)
func mustHaveLine(t *testing.T, what, got string, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(got, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return
		}
	}
	t.Errorf("%s:\n%s\nwant a line with %q", what, got, parts)
}

func mustNotContain(t *testing.T, what, got string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(got, w) {
			t.Errorf("%s:\n%s\nwant no %q", what, got, w)
		}
	}
}

// testNode is one node of the two-node lab.
type testNode struct {
	o        *Overlay
	host, sb string // namespace files
	logs     *bytes.Buffer
}

func newTestNode(t *testing.T, l *testLab, name string, addr netip.Addr) testNode {
	t.Helper()
	n := testNode{host: l.netns(t, name), sb: l.netns(t, name+"-task"), logs: &bytes.Buffer{}}
	o, err := New(Config{NSDir: filepath.Join(l.dir, name+"-netns"), HostNS: n.host, UnderlayAddr: addr,
		Logger: slog.New(slog.NewTextHandler(n.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.o = o
	return n
}

var (
	labNet = Network{ID: "ovnet0123456789", VNI: 4097,
		Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}
	labUL1 = netip.MustParsePrefix("192.168.33.10/24")
	labUL2 = netip.MustParsePrefix("192.168.33.11/24")
)

func ifindex(t *testing.T, ns, name string) int {
	t.Helper()
	h, err := nshandle.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// twoNodes is one overlay network on two nodes with one endpoint each.
type twoNodes struct {
	n1, n2   testNode
	ep1, ep2 Endpoint
	// bystander is a second endpoint on node1, attached by the flooding
	// step only: a frame for the remote endpoint must not reach it.
	bystander Endpoint
	peers     []Peer // both endpoints: each node skips its own
	ov1       string // node1's overlay namespace
}

func newTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	l := newTestLab(t)
	tn := &twoNodes{n1: newTestNode(t, l, "node1", labUL1.Addr()), n2: newTestNode(t, l, "node2", labUL2.Addr())}
	l.underlay(t, tn.n1.host, labUL1, tn.n2.host, labUL2)
	tn.ep1 = Endpoint{ID: "ep1", IP: netip.MustParseAddr("10.0.0.2"), Sandbox: tn.n1.sb, IfName: "eth0"}
	tn.ep2 = Endpoint{ID: "ep2", IP: netip.MustParseAddr("10.0.0.3"), Sandbox: tn.n2.sb, IfName: "eth0"}
	tn.bystander = Endpoint{ID: "ep3", IP: netip.MustParseAddr("10.0.0.4"), Sandbox: l.netns(t, "node1-task2"), IfName: "eth0"}
	tn.peers = []Peer{
		{IP: tn.ep1.IP, MAC: ipam.MAC(tn.ep1.IP), VTEP: labUL1.Addr()},
		{IP: tn.ep2.IP, MAC: ipam.MAC(tn.ep2.IP), VTEP: labUL2.Addr()},
	}
	tn.ov1 = tn.n1.o.NamespacePath(labNet.ID)
	return tn
}

// reconcile is what each node agent's pass does.
func (tn *twoNodes) reconcile(t *testing.T) {
	t.Helper()
	for _, x := range []struct {
		n  testNode
		ep Endpoint
	}{{tn.n1, tn.ep1}, {tn.n2, tn.ep2}} {
		err := errors.Join(
			x.n.o.Sweep([]string{labNet.ID}),
			x.n.o.EnsureNetwork(labNet),
			x.n.o.EnsureEndpoint(labNet.ID, x.ep),
			x.n.o.SetPeers(labNet.ID, tn.peers))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoNodes builds one overlay network on two nodes with one endpoint
// each, programs the peers crosswise and checks what "ip -d link",
// "bridge fdb" and "ip neigh" show, that a ping between the endpoints
// works through VXLAN and only through the static entries, that a second
// pass changes nothing, that drift is repaired, and that removal cleans.
// The steps run in order, each on what the previous one left.
func TestTwoNodes(t *testing.T) {
	tn := newTwoNodes(t)
	tn.reconcile(t)
	if filepath.Base(tn.ov1) != "1-ovnet01234" {
		t.Errorf("overlay namespace %s, want 1-ovnet01234", tn.ov1)
	}
	steps := []struct {
		name string
		fn   func(*testing.T, *twoNodes)
	}{
		{"devices", checkDevices},
		{"peers", checkPeers},
		{"ping over vxlan", checkPing},
		{"no flooding to other local endpoints", checkNoFlood},
		{"second pass changes nothing", checkSecondPass},
		{"without peers no ping", checkNoPeers},
		{"stale entries are replaced", checkStaleReplaced},
		{"drift is repaired", checkDrift},
		{"removal cleans", checkRemoval},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.fn(t, tn) })
	}
}

func checkDevices(t *testing.T, tn *twoNodes) {
	ov1, n1 := tn.ov1, tn.n1
	mustContain(t, "ip -d link show vxlan0", run(t, ov1, "ip", "-d", "link", "show", "vxlan0"),
		"mtu 1450", "master br0", "state UNKNOWN", "vxlan id 4097 local 192.168.33.10",
		"dstport 4789", "nolearning", "proxy", "noudpcsum")
	mustContain(t, "ip addr show br0", run(t, ov1, "ip", "-d", "addr", "show", "br0"),
		"mtu 1450", "inet 10.0.0.1/24", "bridge")
	mustContain(t, "ip link show veth", run(t, ov1, "ip", "-o", "link", "show", vethName("ep1")),
		"mtu 1450", "master br0", ",UP")
	mustContain(t, "ip addr show eth0 in the sandbox", run(t, n1.sb, "ip", "addr", "show", "eth0"),
		"mtu 1450", "link/ether 02:42:0a:00:00:02", "inet 10.0.0.2/24", "state UP")
	mustNotContain(t, "ip link in the host namespace", run(t, n1.host, "ip", "-o", "link"),
		"veth", "vx-", "vxlan0", "eth0")
	mustContain(t, "UDP sockets in the host namespace", run(t, n1.host, "ss", "-Hlun"), ":4789 ")
	mustNotContain(t, "UDP sockets in the overlay namespace", run(t, ov1, "ss", "-Hlun"), ":4789 ")
	checkBridgeHooks(t, n1.host, ov1)
}

// checkBridgeHooks: the bridge's netfilter hooks are off in the overlay
// namespace and left as they were in the host's.
func checkBridgeHooks(t *testing.T, host, ov string) {
	t.Helper()
	const file = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	hostValue, err := try(host, "cat", file)
	if err != nil {
		t.Logf("no br_netfilter here (%s: %v): nothing to turn off", file, strings.TrimSpace(hostValue))
		return
	}
	if got := strings.TrimSpace(run(t, ov, "cat", file)); got != "0" {
		t.Errorf("%s in the overlay namespace = %s, want 0", file, got)
	}
	if got := strings.TrimSpace(hostValue); got != "1" {
		t.Errorf("%s in the host namespace = %s, want 1 (the default, untouched)", file, got)
	}
}

func checkPeers(t *testing.T, tn *twoNodes) {
	fdb := run(t, tn.ov1, "bridge", "fdb", "show", "dev", "vxlan0")
	mustHaveLine(t, "bridge fdb show dev vxlan0", fdb, "02:42:0a:00:00:03 dst 192.168.33.11 ", " self permanent")
	mustNotContain(t, "bridge fdb show dev vxlan0", fdb, "00:00:00:00:00:00", "02:42:0a:00:00:02 dst")
	// br0 itself sends the remote MAC to vxlan0 rather than flooding it
	// to every port; the local endpoint's MAC stays learned on its veth.
	mustHaveLine(t, "bridge fdb show dev vxlan0", fdb, "02:42:0a:00:00:03 master br0 static")
	mustNotContain(t, "bridge fdb show dev vxlan0", fdb, "02:42:0a:00:00:02 master")
	mustContain(t, "bridge fdb get", run(t, tn.ov1, "bridge", "fdb", "get", "02:42:0a:00:00:03", "br", "br0"),
		"dev vxlan0 master br0 static")
	neigh := run(t, tn.ov1, "ip", "neigh", "show", "dev", "vxlan0")
	mustContain(t, "ip neigh show dev vxlan0", neigh, "10.0.0.3 lladdr 02:42:0a:00:00:03 PERMANENT")
	mustNotContain(t, "ip neigh show dev vxlan0", neigh, "10.0.0.2")
}

// checkPing pings both ways. The sandboxes are joined only through the
// overlay namespaces and the underlay veth, so success means VXLAN; the
// vxlan0 counter says so too.
func checkPing(t *testing.T, tn *twoNodes) {
	h, err := nshandle.Open(tn.ov1)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	before := txPackets(t, h)
	run(t, tn.n1.sb, "ping", "-c1", "-W2", "10.0.0.3")
	run(t, tn.n2.sb, "ping", "-c1", "-W2", "10.0.0.2")
	if after := txPackets(t, h); after <= before {
		t.Errorf("vxlan0 tx packets %d → %d, want the pings to go through it", before, after)
	}
}

// checkNoFlood pings the remote endpoint from node1 while a second local
// endpoint sits on br0: br0 sends the echo requests to vxlan0 alone, so
// the bystander receives none of them (an ARP broadcast at most). With
// br0 flooding the remote MAC, it got a copy of each.
func checkNoFlood(t *testing.T, tn *twoNodes) {
	o := tn.n1.o
	if err := o.EnsureEndpoint(labNet.ID, tn.bystander); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := o.RemoveEndpoint(labNet.ID, tn.bystander.ID); err != nil {
			t.Error(err)
		}
	}()
	h, err := nshandle.Open(tn.bystander.Sandbox)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	const pings = 10
	before := rxPackets(t, h, "eth0")
	run(t, tn.n1.sb, "ping", "-c", strconv.Itoa(pings), "-i", "0.01", "-W2", "10.0.0.3")
	if got := rxPackets(t, h, "eth0") - before; got >= pings {
		t.Errorf("the bystander's eth0 received %d packets during %d pings to the remote endpoint, want at most an ARP broadcast", got, pings)
	}
}

func rxPackets(t *testing.T, h *netlink.Handle, dev string) uint64 {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

func checkSecondPass(t *testing.T, tn *twoNodes) {
	want := snapshot(t, tn.ov1, tn.n1.sb)
	idx := ifindex(t, tn.ov1, "vxlan0")
	tn.n1.logs.Reset()
	tn.reconcile(t)
	if diff := snapshotDiff(want, snapshot(t, tn.ov1, tn.n1.sb)); diff != "" {
		t.Error(diff)
	}
	if got := ifindex(t, tn.ov1, "vxlan0"); got != idx {
		t.Errorf("vxlan0 ifindex %d → %d: recreated", idx, got)
	}
	if tn.n1.logs.Len() != 0 {
		t.Errorf("second pass logged:\n%s\nwant nothing", tn.n1.logs)
	}
}

func checkNoPeers(t *testing.T, tn *twoNodes) {
	if err := tn.n1.o.SetPeers(labNet.ID, nil); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "bridge fdb", run(t, tn.ov1, "bridge", "fdb", "show", "dev", "vxlan0"), " dst ", " static")
	mustNotContain(t, "ip neigh", run(t, tn.ov1, "ip", "neigh", "show", "dev", "vxlan0"), "10.0.0.3")
	if out, err := try(tn.n1.sb, "ping", "-c1", "-W1", "10.0.0.3"); err == nil {
		t.Errorf("ping without peers succeeded:\n%s", out)
	}
}

// checkStaleReplaced leaves what a flap leaves (moby#52661): a dynamic
// FDB entry to a wrong VTEP, an extra remote and a stale neighbour.
// Replace must win.
func checkStaleReplaced(t *testing.T, tn *twoNodes) {
	ov1 := tn.ov1
	run(t, ov1, "bridge", "fdb", "add", "02:42:0a:00:00:03", "dev", "vxlan0", "dst", "192.168.33.99", "self", "dynamic")
	run(t, ov1, "bridge", "fdb", "append", "02:42:0a:00:00:03", "dev", "vxlan0", "dst", "192.168.33.98", "self", "permanent")
	run(t, ov1, "ip", "neigh", "replace", "10.0.0.3", "lladdr", "02:42:0a:00:00:99", "dev", "vxlan0", "nud", "stale")
	if err := tn.n1.o.SetPeers(labNet.ID, tn.peers); err != nil {
		t.Fatal(err)
	}
	fdb := run(t, ov1, "bridge", "fdb", "show", "dev", "vxlan0")
	mustHaveLine(t, "bridge fdb", fdb, "02:42:0a:00:00:03 dst 192.168.33.11 ", " self permanent")
	mustNotContain(t, "bridge fdb", fdb, "192.168.33.99", "192.168.33.98")
	mustContain(t, "ip neigh", run(t, ov1, "ip", "neigh", "show", "dev", "vxlan0"),
		"10.0.0.3 lladdr 02:42:0a:00:00:03 PERMANENT")
	run(t, tn.n1.sb, "ping", "-c1", "-W2", "10.0.0.3")
}

func checkDrift(t *testing.T, tn *twoNodes) {
	ov1, sb := tn.ov1, tn.n1.sb
	want := snapshot(t, ov1, sb)
	run(t, ov1, "ip", "link", "set", "br0", "down")
	run(t, ov1, "ip", "link", "set", "vxlan0", "mtu", "1400")
	run(t, sb, "ip", "addr", "flush", "dev", "eth0")
	run(t, ov1, "bridge", "fdb", "del", "02:42:0a:00:00:03", "dev", "vxlan0", "dst", "192.168.33.11", "self")
	tn.reconcile(t)
	if diff := snapshotDiff(want, snapshot(t, ov1, sb)); diff != "" {
		t.Error(diff)
	}
	run(t, sb, "ping", "-c1", "-W2", "10.0.0.3")
}

func checkRemoval(t *testing.T, tn *twoNodes) {
	o := tn.n1.o
	if err := o.RemoveEndpoint(labNet.ID, "ep1"); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "sandbox links", run(t, tn.n1.sb, "ip", "-o", "link"), "eth0")
	mustNotContain(t, "overlay links", run(t, tn.ov1, "ip", "-o", "link"), "veth")
	if err := o.RemoveNetwork(labNet.ID); err != nil {
		t.Fatal(err)
	}
	if nsfile.Exists(tn.ov1) {
		t.Errorf("%s still there after RemoveNetwork", tn.ov1)
	}
	mustNotContain(t, "UDP sockets in the host namespace", run(t, tn.n1.host, "ss", "-Hlun"), ":4789 ")
	if err := o.RemoveNetwork(labNet.ID); err != nil {
		t.Errorf("second RemoveNetwork = %v, want nil", err)
	}
	if err := o.RemoveEndpoint(labNet.ID, "ep1"); err != nil {
		t.Errorf("RemoveEndpoint in a removed network = %v, want nil", err)
	}
	// The VNI is free at once: building again works straight away.
	tn.reconcile(t)
	run(t, tn.n1.sb, "ping", "-c1", "-W2", "10.0.0.3")
}

func txPackets(t *testing.T, h *netlink.Handle) uint64 {
	t.Helper()
	l, err := h.LinkByName("vxlan0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Statistics.TxPackets
}

// snapshot is what a person would look at, minus timers and what the
// bridge learns by itself.
func snapshot(t *testing.T, ov, sb string) []string {
	t.Helper()
	var self []string
	for _, line := range strings.Split(run(t, ov, "bridge", "fdb", "show", "dev", "vxlan0"), "\n") {
		if strings.Contains(line, " self") {
			self = append(self, line)
		}
	}
	return []string{
		timers.ReplaceAllString(run(t, ov, "ip", "-d", "-o", "link", "show", "vxlan0"), ""),
		run(t, ov, "ip", "-o", "addr", "show", "br0"),
		run(t, ov, "ip", "-o", "link", "show", "br0"),
		strings.Join(self, "\n") + "\n",
		run(t, ov, "ip", "neigh", "show", "dev", "vxlan0"),
		run(t, sb, "ip", "-o", "addr", "show", "eth0"),
	}
}

var timers = regexp.MustCompile(`\w+_timer\s+[0-9.]+`)

func snapshotDiff(want, got []string) string {
	var b strings.Builder
	for i := range want {
		if want[i] != got[i] {
			b.WriteString("was:\n" + want[i] + "now:\n" + got[i])
		}
	}
	return b.String()
}

// TestSweepAndRecreate checks, with the real kernel, that a stray vx-*
// device makes EnsureNetwork fail with "file exists" until Sweep removes
// it, that Sweep keeps what it is told to, and that a VXLAN device with
// another VNI is recreated with the reason logged.
func TestSweepAndRecreate(t *testing.T) {
	l := newTestLab(t)
	n := newTestNode(t, l, "node1", labUL1.Addr())
	h, err := nshandle.Open(n.host)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stray := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vx-001001-dead"}, VxlanId: 4097, Port: 4789,
		SrcAddr: labUL1.Addr().AsSlice()}
	if err := h.LinkAdd(stray); err != nil {
		t.Fatal(err)
	}
	err = n.o.EnsureNetwork(labNet)
	if err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("EnsureNetwork beside a stray vx device = %v, want \"file exists\"", err)
	}
	if err := n.o.Sweep(nil); err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "host links after Sweep", run(t, n.host, "ip", "-o", "link"), "vx-")
	if err := n.o.EnsureNetwork(labNet); err != nil {
		t.Fatal(err)
	}
	ov := n.o.NamespacePath(labNet.ID)
	if err := n.o.Sweep([]string{labNet.ID}); err != nil {
		t.Fatal(err)
	}
	if !nsfile.Exists(ov) {
		t.Fatalf("Sweep removed the kept namespace %s", ov)
	}

	changed := labNet
	changed.VNI = 4098
	if err := n.o.EnsureNetwork(changed); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "ip -d link show vxlan0", run(t, ov, "ip", "-d", "link", "show", "vxlan0"),
		"vxlan id 4098", "master br0", "nolearning")
	mustContain(t, "logs", n.logs.String(), "vni: 4097 vs 4098")
	if err := n.o.Sweep(nil); err != nil {
		t.Fatal(err)
	}
	if nsfile.Exists(ov) {
		t.Errorf("Sweep(nil) left %s", ov)
	}
}
