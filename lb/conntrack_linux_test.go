//go:build linux

package lb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/vishvananda/netlink"
)

// TestKernelConntrackCleanup sends real UDP through the iptables plane
// (the network of TestKernelRoundRobin) from one fixed client port, as
// the lab's failure did: a query answered by backend a makes a DNAT
// entry that every later query would refresh, so once a is replaced by b
// the answers must come from b (a still listens: only the entry can send
// a query there). An entry nothing NATed is deleted by a NotNATed filter,
// which spares the NATed one.
func TestKernelConntrackCleanup(t *testing.T) {
	ns := newNamespaces(t, "client", "sbox", "a", "b", "c")
	buildRoundRobinNet(t, ns)
	for _, name := range []string{"a", "b"} {
		serveUDPName(t, ns[name], name, 5353)
	}
	dp, err := NewDataPlane(ModeIPTables, ns["sbox"])
	if err != nil {
		t.Fatal(err)
	}
	dns := Service{Key: "dns/ingress", Name: "dns", FWMark: 0x100, VIP: addr("10.255.0.4"),
		Ports: []Port{{"udp", 5353, 5353}}, Backends: backends("10.255.0.5")}
	sb := Sandbox{Kind: SandboxIngress, OwnAddr: addr("10.255.0.2"), Subnet: netip.MustParsePrefix("10.255.0.0/16"),
		Services: []Service{dns}}
	mustSync(t, dp, sb)

	client := udpClient(t, ns["client"], 40053)
	published := netip.MustParseAddrPort("203.0.113.1:5353")
	if got, err := client.ask(published); got != "a" || err != nil {
		t.Fatalf("first query: %q, %v; want a", got, err)
	}
	if got := udpFlows(t, ns["sbox"], addr("10.255.0.5")); len(got) != 1 {
		t.Fatalf("entries replied by a: %v, want 1", got)
	}

	sb.Services[0].Backends = backends("10.255.0.6")
	mustSync(t, dp, sb)
	if got := udpFlows(t, ns["sbox"], addr("10.255.0.5")); len(got) != 0 {
		t.Errorf("entries replied by a after it left: %v, want none", got)
	}
	for i := range 3 {
		if got, err := client.ask(published); got != "b" || err != nil {
			t.Fatalf("query %d after a left: %q, %v; want b", i, got, err)
		}
	}

	// A query to a port nothing forwards is delivered to the sandbox
	// itself (no socket: ICMP unreachable) and leaves an un-NATed entry.
	unforwarded := netip.MustParseAddrPort("203.0.113.1:6000")
	if _, err := client.ask(unforwarded); err == nil {
		t.Fatalf("query to %s answered", unforwarded)
	}
	if got := udpFlows(t, ns["sbox"], unforwarded.Addr()); len(got) != 1 {
		t.Fatalf("un-NATed entries: %v, want 1", got)
	}
	n, err := KernelConntrack{NetNS: ns["sbox"]}.DeleteUDP([]ConntrackFilter{
		{OrigDstPort: 6000, NotNATed: true}, {OrigDstPort: 5353, NotNATed: true}})
	if err != nil || n != 1 {
		t.Fatalf("DeleteUDP = %d, %v; want 1 deleted", n, err)
	}
	if got := udpFlows(t, ns["sbox"], unforwarded.Addr()); len(got) != 0 {
		t.Errorf("un-NATed entries after the deletion: %v, want none", got)
	}
	if got := udpFlows(t, ns["sbox"], addr("10.255.0.6")); len(got) != 1 {
		t.Errorf("entries replied by b: %v, want the one NATed entry, spared", got)
	}
}

// udpFlows lists the UDP entries of the namespace whose reply comes from
// replySrc.
func udpFlows(t *testing.T, ns string, replySrc netip.Addr) []Flow {
	t.Helper()
	h, err := nshandle.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, syscall.AF_INET)
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	var out []Flow
	for _, fl := range flows {
		if f := flowOf(fl); f.Proto == "udp" && f.ReplySrc.Addr() == replySrc {
			out = append(out, f)
		}
	}
	return out
}

// serveUDPName answers every datagram to port in ns with name.
func serveUDPName(t *testing.T, ns, name string, port int) {
	t.Helper()
	var pc net.PacketConn
	err := nsfile.Do(ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
}

// udpSocket is a client socket on a fixed port in a namespace.
type udpSocket struct{ pc *net.UDPConn }

func udpClient(t *testing.T, ns string, port int) udpSocket {
	t.Helper()
	var pc *net.UDPConn
	err := nsfile.Do(ns, func() (err error) {
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return udpSocket{pc}
}

// ask sends one datagram to to and returns the answer, waiting at most
// a second; stray answers from elsewhere are skipped.
func (s udpSocket) ask(to netip.AddrPort) (string, error) {
	if _, err := s.pc.WriteToUDPAddrPort([]byte("q"), to); err != nil {
		return "", err
	}
	deadline := time.Now().Add(time.Second)
	if err := s.pc.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	for {
		n, from, err := s.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return "", err
		}
		if from == to {
			return string(buf[:n]), nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("no answer from " + to.String())
		}
	}
}

// TestGrowConntrackInANodeNamespace: in a namespace of its own, as a
// lab's node is, the kernel shows the conntrack table's size read-only;
// GrowConntrack through /proc/sys says so and changes nothing, and the
// size it reads is the host's, one figure for the machine.
func TestGrowConntrackInANodeNamespace(t *testing.T) {
	ns := newNamespaces(t, "node")["node"]
	host, err := readConntrackSize(ProcSysctls{})
	if err != nil {
		t.Fatalf("the host's conntrack table: %v", err)
	}
	before, after, err := GrowConntrack(ProcSysctls{NetNS: ns}, host.Max+1024)
	if !errors.Is(err, ErrConntrackReadOnly) || before != host || after != host {
		t.Errorf("GrowConntrack in a namespace: %v -> %v, %v; want %v unchanged and %v", before, after, err, host, ErrConntrackReadOnly)
	}
	if now, err := readConntrackSize(ProcSysctls{}); err != nil || now != host {
		t.Errorf("the host's table after: %v, %v; want %v", now, err, host)
	}
}
