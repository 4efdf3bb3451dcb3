package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/meshd/meshd/mesh/api"
)

func TestParseHop(t *testing.T) {
	tests := []struct {
		in   string
		want hop
		err  string
	}{
		{in: "node2:eth0", want: hop{spec: "node2:eth0", node: "node2", iface: "eth0"}},
		{in: "node2:ingress_sbox:eth0", want: hop{spec: "node2:ingress_sbox:eth0", node: "node2", namespace: "ingress_sbox", iface: "eth0"}},
		{in: "node1:www.1:eth0", want: hop{spec: "node1:www.1:eth0", node: "node1", namespace: "www.1", iface: "eth0"}},
		{in: "node1:1-abcdef0123:vxlan0", want: hop{spec: "node1:1-abcdef0123:vxlan0", node: "node1", namespace: "1-abcdef0123", iface: "vxlan0"}},
		{in: "eth0", err: "want NODE:INTERFACE or NODE:NAMESPACE:INTERFACE"},
		{in: "node1::eth0", err: "want NODE:INTERFACE"},
		{in: "node1:eth0:", err: "want NODE:INTERFACE"},
		{in: "node1:a:b:eth0", err: "want NODE:INTERFACE"},
		{in: "node1:averyveryverylongname0", err: "longer than 15 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHop(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseHops(t *testing.T) {
	hops, nodes, err := parseHops([]string{"node3:eth0", "node1:www.1:eth0", "node3:ingress_sbox:eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"node3", "node1"}; !cmp.Equal(nodes, want) || len(hops) != 3 {
		t.Errorf("nodes %v of %d hops, want %v of 3", nodes, len(hops), want)
	}
	if _, _, err := parseHops([]string{"node3:eth0", "node3:eth0"}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a hop twice: %v, want refused", err)
	}
}

func TestParseDDD(t *testing.T) {
	// tcpdump -y EN10MB -s 96 -ddd 'ip'
	got, err := parseDDD("4\n40 0 0 12\n21 0 1 2048\n6 0 0 96\n6 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []api.BPFInstruction{{Op: 40, K: 12}, {Op: 21, Jf: 1, K: 2048}, {Op: 6, K: 96}, {Op: 6}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "2\n6 0 0 0\n", "1\n6 0 0\n", "1\n6 0 256 0\n", "1\n70000 0 0 0\n"} {
		if _, err := parseDDD(bad); err == nil {
			t.Errorf("parseDDD(%q) accepted", bad)
		}
	}
}

// TestMerger: packets come out in time order, each once it has waited
// the window, with all stamped before it.
func TestMerger(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pkt := func(ms int) api.CapturedPacket {
		return api.CapturedPacket{Time: t0.Add(time.Duration(ms) * time.Millisecond)}
	}
	m := merger{window: 100 * time.Millisecond}
	now := t0
	m.push(0, pkt(5), now)
	m.push(1, pkt(3), now.Add(10*time.Millisecond)) // later, stamped earlier
	m.push(2, pkt(9), now.Add(50*time.Millisecond))
	if got := m.ready(now.Add(99 * time.Millisecond)); len(got) != 0 {
		t.Errorf("before the window: %d packets out, want none", len(got))
	}
	if want := now.Add(100 * time.Millisecond); !m.next().Equal(want) {
		t.Errorf("next at %s, want %s", m.next(), want)
	}
	hopsOf := func(ps []heldPacket) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.hop)
		}
		return out
	}
	// hop 0's packet (5 ms) has waited; hop 1's (3 ms), stamped before
	// it, goes first, though it arrived later; hop 2's waits on.
	if got := hopsOf(m.ready(now.Add(100 * time.Millisecond))); !cmp.Equal(got, []int{1, 0}) {
		t.Errorf("after the window: hops %v, want [1 0]", got)
	}
	m.push(3, pkt(7), now.Add(120*time.Millisecond))
	if got := hopsOf(m.drain()); !cmp.Equal(got, []int{3, 2}) {
		t.Errorf("drain: hops %v, want [3 2]", got)
	}
	if !m.next().IsZero() {
		t.Errorf("next %s with nothing held, want zero", m.next())
	}
}

// fakeCapture answers a capture with fixed records, or an error before
// any; with hold it keeps its stream open until the caller goes.
type fakeCapture struct {
	recs []api.CaptureRecord
	err  error
	hold bool
	got  api.CaptureRequest
}

func (f *fakeCapture) Capture(ctx context.Context, req api.CaptureRequest, fn func(api.CaptureRecord) error) error {
	f.got = req
	if f.err != nil {
		return f.err
	}
	for _, r := range f.recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	if f.hold {
		<-ctx.Done()
	}
	return nil
}

func listening(n int) api.CaptureRecord {
	var l []api.CaptureListening
	for i := range n {
		l = append(l, api.CaptureListening{Hop: i, Interface: "eth0", LinkType: 1, SnapLen: 96})
	}
	return api.CaptureRecord{Listening: l}
}

func packet(hop int, t time.Time, data ...byte) api.CaptureRecord {
	return api.CaptureRecord{Packet: &api.CapturedPacket{Hop: hop, Time: t, Length: len(data) + 100, Data: data}}
}

func end(reason string, stats ...api.CaptureStats) api.CaptureRecord {
	return api.CaptureRecord{End: &api.CaptureEnd{Reason: reason, Hops: stats}}
}

func captureOpts(t *testing.T, args ...string) captureOptions {
	t.Helper()
	hops, nodes, err := parseHops(args)
	if err != nil {
		t.Fatal(err)
	}
	return captureOptions{hops: hops, nodes: nodes, snapLen: 96}
}

// TestRunCaptureMerges: two nodes' streams become one pcapng, an
// interface per hop named as typed, the packets in time order across
// nodes, each on its hop's interface, and each hop's counts at the end.
func TestRunCaptureMerges(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	node3 := &fakeCapture{recs: []api.CaptureRecord{listening(2),
		packet(0, ms(0), 0xa0), packet(1, ms(2), 0xa1), packet(0, ms(4), 0xa2),
		end(api.CaptureEndDuration, api.CaptureStats{Hop: 0, Received: 2}, api.CaptureStats{Hop: 1, Received: 1, Dropped: 4})}}
	node1 := &fakeCapture{recs: []api.CaptureRecord{listening(1),
		packet(0, ms(3), 0xb0), packet(0, ms(1), 0xb1), // a stream's own order is not the kernel's across hops
		end(api.CaptureEndDuration, api.CaptureStats{Hop: 0, Received: 2})}}
	opts := captureOpts(t, "node3:eth0", "node1:www.1:eth0", "node3:ingress_sbox:eth0")
	opts.filter = "tcp port 8888"
	prog := []api.BPFInstruction{{Op: 6, K: 96}}
	var out, status bytes.Buffer
	err := runCapture(context.Background(), map[string]captureAPI{"node3": node3, "node1": node1}, &pcapngSink{w: &out}, &status, opts, prog)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := api.CaptureRequest{Hops: []api.CaptureHop{{Interface: "eth0"}, {Namespace: "ingress_sbox", Interface: "eth0"}}, Filter: prog, SnapLen: 96}
	if diff := cmp.Diff(wantReq, node3.got); diff != "" {
		t.Errorf("node3's request (-want +got):\n%s", diff)
	}
	names, pkts := readPcapng(t, &out)
	if want := []string{"node3:eth0", "node1:www.1:eth0", "node3:ingress_sbox:eth0"}; !cmp.Equal(names, want) {
		t.Errorf("interfaces %v, want %v", names, want)
	}
	want := []string{"node3:eth0 a0", "node1:www.1:eth0 b1", "node3:ingress_sbox:eth0 a1", "node1:www.1:eth0 b0", "node3:eth0 a2"}
	if diff := cmp.Diff(want, pkts); diff != "" {
		t.Errorf("packets (-want +got):\n%s", diff)
	}
	wantStatus := "listening on node3:eth0, node1:www.1:eth0, node3:ingress_sbox:eth0, link-type EN10MB (Ethernet), snapshot length 96 bytes\n" +
		"5 packets captured\n5 packets received by filter\n4 packets dropped by kernel\n"
	if diff := cmp.Diff(wantStatus, status.String()); diff != "" {
		t.Errorf("status lines (-want +got):\n%s", diff)
	}
}

// readPcapng returns a pcapng's interface names and its packets as
// "interface first-byte".
func readPcapng(t *testing.T, r io.Reader) ([]string, []string) {
	t.Helper()
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var pkts []string
	for {
		data, ci, err := ng.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		intf, _ := ng.Interface(ci.InterfaceIndex)
		pkts = append(pkts, intf.Name+" "+hex.EncodeToString(data[:1]))
	}
	var names []string
	for i := range ng.NInterfaces() {
		intf, _ := ng.Interface(i)
		names = append(names, intf.Name)
	}
	return names, pkts
}

// TestRunCaptureCount: the count ends every stream, and the packets
// written are the first by time.
func TestRunCaptureCount(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	a := &fakeCapture{hold: true, recs: []api.CaptureRecord{listening(1), packet(0, t0.Add(2), 2), packet(0, t0.Add(3), 3)}}
	b := &fakeCapture{hold: true, recs: []api.CaptureRecord{listening(1), packet(0, t0.Add(1), 1)}}
	opts := captureOpts(t, "node1:eth0", "node2:eth0")
	opts.count = 2
	var out, status bytes.Buffer
	if err := runCapture(context.Background(), map[string]captureAPI{"node1": a, "node2": b}, &textSink{w: &out}, &status, opts, nil); err != nil {
		t.Fatal(err)
	}
	if a.got.Count != 2 || b.got.Count != 2 {
		t.Errorf("counts asked %d, %d; want 2 of each node", a.got.Count, b.got.Count)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " node2:eth0 ") || !strings.Contains(lines[1], " node1:eth0 ") {
		t.Errorf("printed:\n%s\nwant node2's packet then node1's first", out.String())
	}
	if !strings.Contains(status.String(), "2 packets captured") {
		t.Errorf("status:\n%s\nwant 2 packets captured", status.String())
	}
}

// TestRunCaptureFails: a node that refuses ends the others' streams,
// and its error, named by node, is the command's.
func TestRunCaptureFails(t *testing.T) {
	ok := &fakeCapture{hold: true, recs: []api.CaptureRecord{listening(1)}}
	bad := &fakeCapture{err: api.NotFound(`no interface "eth9" in "ingress_sbox"`)}
	opts := captureOpts(t, "node1:eth0", "node2:ingress_sbox:eth9")
	var out, status bytes.Buffer
	err := runCapture(context.Background(), map[string]captureAPI{"node1": ok, "node2": bad}, &pcapngSink{w: &out}, &status, opts, nil)
	if err == nil || err.Error() != `node2: no interface "eth9" in "ingress_sbox"` {
		t.Errorf("got %v, want node2's refusal", err)
	}
	if out.Len() != 0 || status.Len() != 0 {
		t.Errorf("wrote %d bytes and said %q before every hop listened, want nothing", out.Len(), status.String())
	}
}

func TestDescribePacket(t *testing.T) {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0x42, 0, 0, 0, b} }
	build := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 8888, SYN: true}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 255, 0, 2}, DstIP: net.IP{10, 255, 0, 5}}
	syn := build(&layers.Ethernet{SrcMAC: mac(2), DstMAC: mac(5), EthernetType: layers.EthernetTypeIPv4}, ip, tcp)
	udp := &layers.UDP{SrcPort: 54321, DstPort: 4789}
	outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 33, 12}, DstIP: net.IP{192, 168, 33, 10}}
	vx := build(&layers.Ethernet{SrcMAC: mac(12), DstMAC: mac(10), EthernetType: layers.EthernetTypeIPv4}, outer, udp,
		&layers.VXLAN{ValidIDFlag: true, VNI: 4096}, gopacket.Payload(syn))
	tests := []struct {
		data []byte
		want string
	}{
		{syn, "IP 10.255.0.2.40000 > 10.255.0.5.8888: TCP [SYN], length 60"},
		{vx, "IP 192.168.33.12.54321 > 192.168.33.10.4789: UDP VXLAN vni 4096: IP 10.255.0.2.40000 > 10.255.0.5.8888: TCP [SYN], length 110"},
	}
	for _, tt := range tests {
		if got := describePacket(tt.data, len(tt.data)); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
