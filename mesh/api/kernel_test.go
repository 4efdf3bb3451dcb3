package api

import (
	"net/netip"
	"testing"
)

// Listener picks the socket the kernel would: the one bound to the
// address before a wildcard, 0.0.0.0 before :: for IPv4, the protocol
// and port alike.
func TestListener(t *testing.T) {
	sock := func(proto, addr string, port uint16, ino uint32) KernelSocket {
		return KernelSocket{Proto: proto, Addr: netip.MustParseAddr(addr), Port: port, Inode: ino}
	}
	ns := NetnsState{Sockets: []KernelSocket{
		sock("tcp", "::", 80, 1), sock("tcp", "0.0.0.0", 80, 2), sock("tcp", "10.0.0.5", 80, 3),
		sock("tcp", "::", 443, 4), sock("udp", "0.0.0.0", 53, 5), sock("tcp", "0.0.0.0", 8080, 6),
	}}
	for _, tt := range []struct {
		proto, dst string
		want       uint32 // inode; 0 for none
	}{
		{"tcp", "10.0.0.5:80", 3},
		{"tcp", "10.0.0.6:80", 2},
		{"tcp", "10.0.0.6:443", 4},
		{"tcp", "[fd00::1]:80", 1},
		{"tcp", "[fd00::1]:8080", 0},
		{"udp", "10.0.0.5:53", 5},
		{"tcp", "10.0.0.5:53", 0},
		{"udp", "10.0.0.5:80", 0},
	} {
		got, ok := ns.Listener(tt.proto, netip.MustParseAddrPort(tt.dst))
		if ok != (tt.want != 0) || got.Inode != tt.want {
			t.Errorf("Listener(%s, %s) = inode %d %v, want %d", tt.proto, tt.dst, got.Inode, ok, tt.want)
		}
	}
}
