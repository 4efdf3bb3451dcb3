package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/meshd/meshd/internal/testutil"
)

// TestCapture captures one curl through node3's published port at three
// hops at once, node3's underlay eth0, its ingress sandbox's eth0 and the
// backend task's eth0 on node1, into one pcapng that tcpdump reads: the
// client's packet to 192.168.33.12:8888 on the underlay, the same
// connection sent on in VXLAN (VNI 4096) to node1, and its DNATed and
// SNATed form, 10.255.x.x to the task, in the sandbox and in the task.
func TestCapture(t *testing.T) {
	tcpdump := testutil.RequireTool(t, "tcpdump")
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "service", "create", "--name", "www", "--replicas", "1",
		"--constraint", "node.hostname==node1", "--publish", "8888:80", "whoami")
	url := "192.168.33.12:8888"
	eventually(t, 10*time.Second, "www answers on node3's published port", func() (bool, string) {
		out, err := l.onNode("client", "curl", "-s", "-m", "2", url)
		return err == nil && hostnameRE.MatchString(out), out
	})

	file := filepath.Join(t.TempDir(), "mesh.pcapng")
	hops := []string{"node3:eth0", "node3:ingress_sbox:eth0", "node1:www.1:eth0"}
	capt := l.startCapture(t, append([]string{"-w", file, "-f", "tcp port 8888 or udp port 4789", "--duration", "20s"}, hops...))
	out, err := l.onNode("client", "curl", "-s", "-m", "3", url)
	if err != nil || !hostnameRE.MatchString(out) {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	status := capt.stop(t)
	if !regexp.MustCompile(`(?m)^[1-9]\d* packets captured$`).MatchString(status) {
		t.Errorf("capture's closing lines:\n%s\nwant packets captured", status)
	}

	// tcpdump reads it, and shows the three forms of the client's SYN.
	text, err := exec.Command(tcpdump, "-n", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, text)
	}
	for _, want := range []string{
		`IP 192\.168\.33\.1\.(\d+) > 192\.168\.33\.12\.8888: Flags \[S\]`,
		`IP 192\.168\.33\.12\.\d+ > 192\.168\.33\.10\.4789: VXLAN, flags \[I\] \(0x08\), vni 4096\nIP 10\.255\.\d+\.\d+\.\d+ > 10\.255\.\d+\.\d+\.8888: Flags \[S\]`,
		`(?m)^\S+ IP 10\.255\.\d+\.\d+\.\d+ > 10\.255\.\d+\.\d+\.8888: Flags \[S\]`,
	} {
		if !regexp.MustCompile(want).Match(text) {
			t.Errorf("tcpdump -r prints no line matching %s:\n%s", want, text)
		}
	}

	// Each hop has its own interface in the file, and its own form of
	// the SYN on it.
	syns := synsByHop(t, file)
	client := netip.MustParseAddr("192.168.33.1")
	check := func(hop, what string, ok func(s syn) bool) {
		for _, s := range syns[hop] {
			if ok(s) {
				return
			}
		}
		t.Errorf("%s: no SYN %s; SYNs seen there: %v", hop, what, syns[hop])
	}
	var port uint16 // the client's source port, which every form keeps
	for _, s := range syns["node3:eth0"] {
		if s.src.Addr() == client && s.dst == netip.MustParseAddrPort(url) && s.vni == 0 {
			port = s.src.Port()
		}
	}
	if port == 0 {
		t.Fatalf("node3:eth0: no SYN from the client to %s; SYNs by hop: %v", url, syns)
	}
	check("node3:eth0", "in VXLAN VNI 4096 to node1", func(s syn) bool {
		return s.vni == 4096 && s.outerDst == netip.MustParseAddr("192.168.33.10") && s.src.Port() == port
	})
	ingress := netip.MustParsePrefix("10.255.0.0/16")
	dnat := func(s syn) bool {
		return s.vni == 0 && ingress.Contains(s.src.Addr()) && ingress.Contains(s.dst.Addr()) && s.src.Port() == port
	}
	check("node3:ingress_sbox:eth0", "from the sandbox to the task (DNAT and SNAT)", dnat)
	check("node1:www.1:eth0", "from node3's sandbox to the task", dnat)
}

// syn is a TCP SYN seen at a hop: its addresses, and for one in VXLAN
// the VNI and the outer destination.
type syn struct {
	src, dst netip.AddrPort
	vni      uint32
	outerDst netip.Addr
}

func (s syn) String() string {
	if s.vni != 0 {
		return fmt.Sprintf("%s>%s(vxlan %d to %s)", s.src, s.dst, s.vni, s.outerDst)
	}
	return fmt.Sprintf("%s>%s", s.src, s.dst)
}

// synsByHop reads a pcapng and returns its SYNs by interface name.
func synsByHop(t *testing.T, file string) map[string][]syn {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ng, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]syn{}
	for {
		data, ci, err := ng.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		intf, err := ng.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		var s syn
		var ip *layers.IPv4
		for _, l := range gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default).Layers() {
			switch l := l.(type) {
			case *layers.IPv4:
				if ip != nil && s.vni != 0 {
					s.outerDst, _ = netip.AddrFromSlice(ip.DstIP.To4())
				}
				ip = l
			case *layers.VXLAN:
				s.vni = l.VNI
			case *layers.TCP:
				if l.SYN && !l.ACK && ip != nil {
					src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
					dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
					s.src, s.dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
					out[intf.Name] = append(out[intf.Name], s)
				}
			}
		}
	}
}

// runningCapture is a meshctl capture in the background.
type runningCapture struct {
	cmd    *exec.Cmd
	lines  chan string // its stderr, a line at a time
	status strings.Builder
}

// startCapture starts meshctl capture and returns once it says that it
// listens on every hop.
func (l *testLab) startCapture(t *testing.T, args []string) *runningCapture {
	t.Helper()
	full := append([]string{"--lab-prefix", l.prefix, "--lab-root", l.root, "capture"}, args...)
	c := &runningCapture{cmd: exec.Command(filepath.Join(binDir, "meshctl"), full...), lines: make(chan string, 64)}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	timeout := time.After(15 * time.Second * timeScale())
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("meshctl capture ended before listening:\n%s", c.status.String())
			}
			c.status.WriteString(line + "\n")
			if strings.HasPrefix(line, "listening on ") {
				return c
			}
		case <-timeout:
			t.Fatalf("meshctl capture does not listen after 15s:\n%s", c.status.String())
		}
	}
}

// stop interrupts the capture as Ctrl-C does, waits for it to write its
// file and end, and returns what it printed on stderr.
func (c *runningCapture) stop(t *testing.T) string {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for line := range c.lines {
		c.status.WriteString(line + "\n")
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("meshctl capture: %v\n%s", err, c.status.String())
	}
	return c.status.String()
}
