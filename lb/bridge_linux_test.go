//go:build linux

package lb

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/nsfile"
)

// TestKernelBridgeMatchesModel drives a BridgeSyncer and the agent's
// HostSyncer in one real namespace that already holds someone else's
// rules, and after every step compares the kernel's iptables-save with
// the FakeRules model given the same steps: the spelling of every bridge
// rule is iptables-save's, and removing everything gives the namespace
// back as it was.
func TestKernelBridgeMatchesModel(t *testing.T) {
	ns := newNamespaces(t, "node")["node"]
	ctx := context.Background()
	kernel := IPTables{NetNS: ns}
	if err := kernel.Apply(ctx, []byte(foreignRules)); err != nil {
		t.Fatal(err)
	}
	original := rawState(t, kernel)
	model := withForeignRules(t)
	realHost, modelHost := NewHostSyncer(kernel, WithConntrack(KernelConntrack{NetNS: ns})), NewHostSyncer(model, WithConntrack(NewFakeConntrack()))
	realBridge, modelBridge := NewBridgeSyncer(kernel, WithConntrack(KernelConntrack{NetNS: ns})), NewBridgeSyncer(model, WithConntrack(NewFakeConntrack()))

	withIP := bridgeThree
	withIP.Networks = append(withIP.Networks, secretNet)
	withIP.Ports = append(withIP.Ports, BridgePort{Proto: "udp", HostIP: addr("127.0.0.1"), HostPort: 5353,
		Bridge: "mesh0", Dest: addr("172.17.0.3"), Port: 53})
	steps := []struct {
		name   string
		host   HostRules
		bridge BridgeRules
	}{
		{"one network", worldOne.host, bridgeOne},
		{"-P on a second network", worldOne.host, bridgeAll},
		{"everything", worldTwo.host, withIP},
		{"internal only", worldTwo.host, BridgeRules{Networks: []BridgeNetwork{secretNet}}},
		{"-p 8080:80", worldOne.host, bridgePublish},
		{"bridge rules removed", worldOne.host, BridgeRules{}},
		{"back", worldOne.host, bridgeThree},
		{"remove everything", HostRules{}, BridgeRules{}},
	}
	for _, st := range steps {
		for _, side := range []struct {
			host   *HostSyncer
			bridge *BridgeSyncer
		}{{realHost, realBridge}, {modelHost, modelBridge}} {
			if err := side.host.Sync(ctx, st.host); err != nil {
				t.Fatalf("%s: host: %v", st.name, err)
			}
			if err := side.bridge.Sync(ctx, st.bridge); err != nil {
				t.Fatalf("%s: bridge: %v", st.name, err)
			}
		}
		if diff := cmp.Diff(rawState(t, model), rawState(t, kernel)); diff != "" {
			t.Errorf("%s: kernel differs from the model (-model +kernel):\n%s", st.name, diff)
		}
	}
	if diff := cmp.Diff(original, rawState(t, kernel)); diff != "" {
		t.Errorf("removing everything left a trace (-original +now):\n%s", diff)
	}
}

// TestKernelBridgeTraffic sends real connections through the bridge
// rules, in namespaces standing for a node and its containers:
//
//	client 203.0.113.7 ── 203.0.113.1 node ─┬─ mesh0 172.17.0.1/16 ── web 172.17.0.2 (answers "web" on 80)
//	                                        └─ br-3f2a1b4c5d6e 172.19.0.1/16 ── api 172.19.0.2 (answers "api" on 5000)
//
// with the node's rules from a BridgeSyncer: api published with -P
// (32768), web with -p 8080:80.
func TestKernelBridgeTraffic(t *testing.T) {
	ns := newNamespaces(t, "client", "node", "web", "api")
	for _, n := range []BridgeNetwork{defaultNet, devNet} {
		gw := netip.PrefixFrom(n.Subnet.Addr().Next(), n.Subnet.Bits())
		addBridge(t, link{ns: ns["node"], name: n.Bridge, addr: gw})
	}
	addVeth(t, link{ns: ns["node"], name: "eth0", addr: netip.MustParsePrefix("203.0.113.1/24")},
		link{ns: ns["client"], name: "eth0", addr: netip.MustParsePrefix("203.0.113.7/24"), gw: addr("203.0.113.1")})
	addVeth(t, link{ns: ns["node"], name: "vweb", master: defaultNet.Bridge},
		link{ns: ns["web"], name: "eth0", addr: netip.MustParsePrefix("172.17.0.2/16"), gw: addr("172.17.0.1")})
	addVeth(t, link{ns: ns["node"], name: "vapi", master: devNet.Bridge},
		link{ns: ns["api"], name: "eth0", addr: netip.MustParsePrefix("172.19.0.2/16"), gw: addr("172.19.0.1")})
	// What the device side does: forwarding, and route_localnet on each
	// bridge so that 127.0.0.1 can be DNATed to a container.
	err := nsfile.Do(ns["node"], func() error {
		for _, f := range []string{"ip_forward", "conf/mesh0/route_localnet", "conf/" + devNet.Bridge + "/route_localnet"} {
			if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4", f), []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	serveName(t, ns["web"], "web", 80)
	serveName(t, ns["api"], "api", 5000)
	serveRemoteAddr(t, ns["client"], 7000)

	api := netip.MustParseAddrPort("172.19.0.2:5000")
	// Without rules the node forwards everything, so each check below is
	// the rules' doing.
	if got, err := dialTimeout(ns["web"], api); got != "api" {
		t.Fatalf("without rules, web to api: %q, %v; the test network is broken", got, err)
	}
	s := NewBridgeSyncer(IPTables{NetNS: ns["node"]}, WithConntrack(KernelConntrack{NetNS: ns["node"]}))
	if err := s.Sync(context.Background(), BridgeRules{Networks: bridgeAll.Networks, Ports: []BridgePort{apiPort, webPort}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, from string
		to         string
		want       string // "" = no answer (dropped)
	}{
		{"a client to -P's port", "client", "203.0.113.1:32768", "api"},
		{"a client to -p 8080:80", "client", "203.0.113.1:8080", "web"},
		{"the node to 127.0.0.1:32768", "node", "127.0.0.1:32768", "api"},
		{"the node to its own address", "node", "203.0.113.1:8080", "web"},
		{"a container goes out, masqueraded", "web", "203.0.113.7:7000", "203.0.113.1"},
		{"another network is out of reach", "web", "172.19.0.2:5000", ""},
		{"and so is its published port", "web", "203.0.113.1:32768", ""},
	} {
		got, err := dialTimeout(ns[c.from], netip.MustParseAddrPort(c.to))
		var nerr net.Error
		switch {
		case c.want == "" && (err == nil || !errors.As(err, &nerr) || !nerr.Timeout()):
			t.Errorf("%s: %s to %s: %q, %v; want no answer (dropped)", c.what, c.from, c.to, got, err)
		case c.want != "" && got != c.want:
			t.Errorf("%s: %s to %s: %q, %v; want %q", c.what, c.from, c.to, got, err, c.want)
		}
	}
}

// dialTimeout is dial with a short timeout: a dropped SYN would otherwise
// wait for TCP's own.
func dialTimeout(ns string, addr netip.AddrPort) (string, error) {
	var line string
	err := nsfile.Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		line = string(buf[:n])
		if n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return err
	})
	return line, err
}

// serveRemoteAddr listens on port in ns and answers each connection with
// the address it came from.
func serveRemoteAddr(t *testing.T, ns string, port int) {
	t.Helper()
	serveLines(t, ns, port, func(c net.Conn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() })
}
