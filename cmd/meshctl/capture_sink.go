package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/meshd/meshd/mesh/api"
)

// captureSink is where the merged packets go: a pcapng file or stream,
// or lines of text.
type captureSink interface {
	// start is called once every hop listens.
	startHops(hops []hop, snapLen int, filter string) error
	// packet writes one packet of hops[i].
	packet(i int, p api.CapturedPacket) error
	// flush hands what was written to the reader.
	flush() error
	// finish records each hop's counts at the end.
	finish(stats []api.CaptureStats, end time.Time) error
}

// pcapngSink writes one pcapng section with an interface per hop, named
// as the hop was typed (Wireshark's frame.interface_name), so that each
// packet says where it was seen.
type pcapngSink struct {
	w         io.Writer
	flushEach bool // a stream (-w -): each batch goes out as it comes
	ng        *pcapgo.NgWriter
	start     time.Time
}

func (s *pcapngSink) startHops(hops []hop, snapLen int, filter string) error {
	s.start = time.Now()
	var err error
	for i, h := range hops {
		// OS is the hop's, a node's: meshd runs on Linux alone.
		intf := pcapgo.NgInterface{Name: h.spec, Description: hopDescription(h), Filter: filter, OS: "Linux",
			LinkType: layers.LinkTypeEthernet, SnapLength: uint32(snapLen)}
		if i == 0 {
			opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{OS: runtime.GOOS, Hardware: runtime.GOARCH, Application: "meshctl capture"}}
			s.ng, err = pcapgo.NewNgWriterInterface(s.w, intf, opts)
		} else {
			_, err = s.ng.AddInterface(intf)
		}
		if err != nil {
			return fmt.Errorf("write pcapng: %w", err)
		}
	}
	return s.ng.Flush()
}

func (s *pcapngSink) packet(i int, p api.CapturedPacket) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: max(p.Length, len(p.Data)), InterfaceIndex: i}
	if err := s.ng.WritePacket(ci, p.Data); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

// flush hands a stream its packets as they come; a file gets them in the
// writer's 4 KiB blocks, and the rest at finish.
func (s *pcapngSink) flush() error {
	if !s.flushEach {
		return nil
	}
	return s.ng.Flush()
}

func (s *pcapngSink) finish(stats []api.CaptureStats, end time.Time) error {
	for i, st := range stats {
		err := s.ng.WriteInterfaceStats(i, pcapgo.NgInterfaceStatistics{LastUpdate: end, StartTime: s.start, EndTime: end,
			PacketsReceived: st.Received, PacketsDropped: st.Dropped})
		if err != nil {
			return fmt.Errorf("write pcapng: %w", err)
		}
	}
	return s.ng.Flush()
}

// hopDescription says where a hop is in words, for the pcapng interface.
func hopDescription(h hop) string {
	if h.namespace == "" {
		return fmt.Sprintf("%s in %s's namespace", h.iface, h.node)
	}
	return fmt.Sprintf("%s in %s on %s", h.iface, h.namespace, h.node)
}

// textSink prints a line per packet: its time, its hop, and what it is,
// layer by layer as gopacket decodes it (VXLAN's inner frame too).
type textSink struct {
	w    io.Writer
	hops []hop
}

func (s *textSink) startHops(hops []hop, _ int, _ string) error { s.hops = hops; return nil }

func (s *textSink) packet(i int, p api.CapturedPacket) error {
	_, err := fmt.Fprintf(s.w, "%s %s %s\n", p.Time.Local().Format("15:04:05.000000"), s.hops[i].spec, describePacket(p.Data, p.Length))
	return err
}

func (s *textSink) flush() error                               { return nil }
func (s *textSink) finish([]api.CaptureStats, time.Time) error { return nil }

// describePacket is a tcpdump-like summary of an Ethernet frame:
// "IP 10.255.0.2.40000 > 10.255.0.5.8888: TCP [SYN], length 74", with
// "VXLAN vni 4096:" before an encapsulated frame.
func describePacket(data []byte, length int) string {
	pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var parts []string
	var src, dst string
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			src, dst = l.SrcIP.String(), l.DstIP.String()
		case *layers.IPv6:
			src, dst = l.SrcIP.String(), l.DstIP.String()
		case *layers.TCP:
			parts = append(parts, fmt.Sprintf("IP %s.%d > %s.%d: TCP %s", src, l.SrcPort, dst, l.DstPort, tcpFlags(l)))
		case *layers.UDP:
			parts = append(parts, fmt.Sprintf("IP %s.%d > %s.%d: UDP", src, l.SrcPort, dst, l.DstPort))
		case *layers.VXLAN:
			parts = append(parts, fmt.Sprintf("VXLAN vni %d:", l.VNI))
		case *layers.ICMPv4:
			parts = append(parts, fmt.Sprintf("IP %s > %s: ICMP %s", src, dst, l.TypeCode))
		case *layers.ARP:
			parts = append(parts, fmt.Sprintf("ARP %s %s > %s", arpOp(l.Operation),
				ipString(l.SourceProtAddress), ipString(l.DstProtAddress)))
		}
	}
	if ls := pkt.Layers(); len(parts) == 0 && len(ls) > 0 {
		parts = append(parts, ls[min(len(ls)-1, 1)].LayerType().String()) // what Ethernet carries
	}
	return fmt.Sprintf("%s, length %d", strings.Join(parts, " "), length)
}

func tcpFlags(t *layers.TCP) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{t.SYN, "SYN"}, {t.FIN, "FIN"}, {t.RST, "RST"}, {t.PSH, "PSH"}, {t.ACK, "ACK"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return "[" + strings.Join(f, ",") + "]"
}

func arpOp(op uint16) string {
	if op == layers.ARPRequest {
		return "who-has"
	}
	return "reply"
}

func ipString(b []byte) string {
	if len(b) == 4 {
		return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
	}
	return fmt.Sprintf("%x", b)
}
