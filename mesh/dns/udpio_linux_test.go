//go:build linux

package dns

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPutSockaddr checks the sockaddr a forwarded answer is sent to: the
// family of the address, the port in network order, and an IPv4-mapped
// address kept as IPv6's (what an IPv6 socket reads).
func TestPutSockaddr(t *testing.T) {
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
		port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // same offset in both families
		if got := uint16(port[0])<<8 | uint16(port[1]); got != ap.Port() {
			t.Errorf("%s: port %d, want %d", tt.ap, got, ap.Port())
		}
		var addr netip.Addr
		if tt.family == unix.AF_INET {
			addr = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&sa)).Addr)
		} else {
			addr = netip.AddrFrom16(sa.Addr)
		}
		if addr != ap.Addr() {
			t.Errorf("%s: address %s, want %s", tt.ap, addr, ap.Addr())
		}
	}
}
