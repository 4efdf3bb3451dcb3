//go:build linux

package dns

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestSockaddr checks the sockaddr a forwarded answer is sent to: the
// family of the address, the port in network order, an IPv4-mapped
// address kept as IPv6's (what an IPv6 socket reads), and that a
// datagram's peer read back from it is the address written.
func TestSockaddr(t *testing.T) {
	for _, tt := range []struct {
		ap     string
		family uint16
		size   uint32
	}{
		{"192.0.2.1:53", unix.AF_INET, unix.SizeofSockaddrInet4},
		{"[2001:db8::1]:5353", unix.AF_INET6, unix.SizeofSockaddrInet6},
		{"[::ffff:192.0.2.1]:40000", unix.AF_INET6, unix.SizeofSockaddrInet6},
	} {
		ap := netip.MustParseAddrPort(tt.ap)
		var sa unix.RawSockaddrInet6
		if got := putSockaddr(&sa, ap); got != tt.size {
			t.Errorf("%s: length %d, want %d", tt.ap, got, tt.size)
		}
		if sa.Family != tt.family {
			t.Errorf("%s: family %d, want %d", tt.ap, sa.Family, tt.family)
		}
		if got := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]); got != ap.Port() {
			t.Errorf("%s: port %d in network order, want %d", tt.ap, got, ap.Port())
		}
		if got := getSockaddr(&sa); got != ap {
			t.Errorf("%s: read back as %s", tt.ap, got)
		}
	}
	if got := getSockaddr(&unix.RawSockaddrInet6{Family: unix.AF_UNIX}); got.IsValid() {
		t.Errorf("AF_UNIX: read as %s, want none", got)
	}
}

// TestPortableBatches serves the same queries both ways a UDP worker can
// move its datagrams, the raw calls (Linux) and x/net's batches (the
// other systems): local answers and forwarded ones, 64 at once so that
// batches hold several.
func TestPortableBatches(t *testing.T) {
	for _, portable := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw", true: "x/net"}[portable], func(t *testing.T) {
			up := startUpstream(t, answerA)
			s := newTestServer(t, Config{Upstreams: []netip.AddrPort{up.addr}}, fixture())
			s.portableUDP = portable
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Attach(Querier{Networks: []string{netOv}}, pc, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			if got := r.rc == nil; got != portable {
				t.Fatalf("x/net's batches: %v, want %v", got, portable)
			}
			want := map[string]string{"www.": "www.\t600\tIN\tA\t10.0.0.2", "example.org.": "example.org.\t30\tIN\tA\t192.0.2.1"}
			errs := make(chan error, 64)
			for i := range 64 {
				name := map[bool]string{false: "www.", true: "example.org."}[i%4 == 0]
				go func() {
					resp, err := exchange(pc.LocalAddr().String(), "udp", name, dns.TypeA, 0)
					switch {
					case err != nil:
						errs <- fmt.Errorf("%s: %w", name, err)
					case len(resp.Answer) != 1 || resp.Answer[0].String() != want[name]:
						errs <- fmt.Errorf("%s: answer %v, want %s", name, resp.Answer, want[name])
					default:
						errs <- nil
					}
				}()
			}
			for range 64 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}
