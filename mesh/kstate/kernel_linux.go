//go:build linux

package kstate

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshd/meshd/internal/nshandle"
	"github.com/meshd/meshd/mesh/api"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netlinkReads are the reads no library had a seam for.
type netlinkReads struct{}

// Routes implements [Kernel]: the main table's IPv4 routes.
func (netlinkReads) Routes(ns string) ([]api.KernelRoute, error) {
	h, err := nshandle.Open(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var routes []netlink.Route
	for range 3 { // a dump the kernel interrupted is asked again
		if routes, err = h.RouteList(nil, unix.AF_INET); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	out := make([]api.KernelRoute, 0, len(routes))
	for _, r := range routes {
		kr := api.KernelRoute{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Dev: strconv.Itoa(r.LinkIndex), Scope: r.Scope.String()}
		if r.Dst != nil {
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			bits, _ := r.Dst.Mask.Size()
			kr.Dst = netip.PrefixFrom(a.Unmap(), bits)
		}
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			kr.Gateway = a.Unmap()
		}
		if a, ok := netip.AddrFromSlice(r.Src); ok {
			kr.Src = a.Unmap()
		}
		out = append(out, kr)
	}
	return out, nil
}

// NetNSIDs implements [Kernel] with RTM_GETNSID, asked in ns about each
// other namespace's file.
func (netlinkReads) NetNSIDs(ns string, others []string) (map[int]string, error) {
	h, err := nshandle.Open(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	out := map[int]string{}
	for _, p := range others {
		fd, err := netns.GetFromPath(p)
		if err != nil {
			continue // removed since it was listed
		}
		id, err := h.GetNetNsIdByFd(int(fd))
		fd.Close()
		if err != nil {
			return nil, fmt.Errorf("netns id of %s: %w", p, err)
		}
		if id >= 0 {
			out[id] = p
		}
	}
	return out, nil
}

// Sockets implements [Kernel] with sock_diag (SOCK_DIAG_BY_FAMILY) asked
// in ns, for both families: TCP sockets in LISTEN and UDP sockets not
// connected, the ones that take new connections and datagrams.
func (netlinkReads) Sockets(ns string) ([]api.KernelSocket, error) {
	// The handle needs its own sock_diag socket: without one netlink asks
	// in the calling thread's namespace.
	h, err := nshandle.Open(ns, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	type dump struct {
		proto string
		state uint8
		list  func(uint8) ([]*netlink.Socket, error)
	}
	var out []api.KernelSocket
	for _, d := range []dump{{"tcp", netlink.TCP_LISTEN, h.SocketDiagTCP}, {"udp", netlink.TCP_CLOSE, h.SocketDiagUDP}} {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			var socks []*netlink.Socket
			for range 3 { // a dump the kernel interrupted is asked again
				if socks, err = d.list(family); !errors.Is(err, netlink.ErrDumpInterrupted) {
					break
				}
			}
			if err != nil {
				return nil, fmt.Errorf("sock_diag %s family %d: %w", d.proto, family, err)
			}
			for _, s := range socks {
				if s.State != d.state {
					continue
				}
				a, _ := netip.AddrFromSlice(s.ID.Source)
				out = append(out, api.KernelSocket{Proto: d.proto, Addr: a.Unmap(), Port: s.ID.SourcePort, Inode: s.INode})
			}
		}
	}
	slices.SortFunc(out, compareSockets)
	return out, nil
}

// compareSockets orders sockets by protocol, port, then address, so that
// a snapshot reads the same whatever order the dumps came in.
func compareSockets(a, b api.KernelSocket) int {
	return cmp.Or(strings.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), a.Addr.Compare(b.Addr))
}
