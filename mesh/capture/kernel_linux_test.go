//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
	"golang.org/x/net/bpf"
)

// udpDstPort is "udp dst port PORT" for Ethernet frames of IPv4 packets
// without options, hand-assembled.
func udpDstPort(t *testing.T, port uint32) []bpf.RawInstruction {
	t.Helper()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},                           // ethertype
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 5}, // IPv4
		bpf.LoadAbsolute{Off: 23, Size: 1},                           // protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 3},     // UDP
		bpf.LoadAbsolute{Off: 36, Size: 2},                           // destination port
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: port, SkipTrue: 1},
		bpf.RetConstant{Val: 262144},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// TestKernelSocketInNamespace opens a socket on lo of another namespace
// with a filter and sees there the one datagram the filter passes.
func TestKernelSocketInNamespace(t *testing.T) {
	dir := testutil.NetNSDir(t)
	ns := testutil.NetNS(t, dir, "cap")
	if _, err := (Kernel{}).Open(ns, "nope0", 128, nil); !errors.Is(err, ErrNoInterface) {
		t.Errorf("open on an absent interface: %v, want ErrNoInterface", err)
	}
	src, err := Kernel{}.Open(ns, "lo", 128, udpDstPort(t, 9999))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	before := time.Now()
	err = nsfile.Do(ns, func() error {
		for _, port := range []int{9998, 9999} {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				return err
			}
			_, err = c.Write(make([]byte, 200))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send datagrams: %v", err)
	}
	timer := time.AfterFunc(5*time.Second, func() { src.Close() }) // a Read that never returns fails
	defer timer.Stop()
	p, err := src.Read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if port := binary.BigEndian.Uint16(p.Data[36:38]); port != 9999 {
		t.Errorf("first packet to port %d, want 9999 (the filter refuses 9998)", port)
	}
	if len(p.Data) != 128 || p.Length != 14+20+8+200 {
		t.Errorf("packet of %d bytes kept of %d, want 128 of %d", len(p.Data), p.Length, 14+20+8+200)
	}
	if p.Time.Before(before.Add(-time.Second)) || p.Time.After(time.Now()) {
		t.Errorf("packet stamped %s, want between %s and now", p.Time, before)
	}
	if st, err := src.Stats(); err != nil || st.Received == 0 {
		t.Errorf("stats %+v, %v: want packets received", st, err)
	}
}
