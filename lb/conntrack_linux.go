//go:build linux

package lb

import (
	"fmt"
	"net/netip"
	"syscall"

	"github.com/meshd/meshd/internal/nshandle"
	"github.com/vishvananda/netlink"
)

// KernelConntrack is the kernel's conntrack table in the namespace whose
// file is NetNS ("" = the caller's), reached over ctnetlink. Each call
// opens its own netlink socket there, so it holds nothing between calls.
type KernelConntrack struct{ NetNS string }

var _ Conntrack = KernelConntrack{}

// DeleteUDP dumps the table and deletes the UDP entries any filter
// matches, one request each (netlink's ConntrackDeleteFilters). An entry
// gone meanwhile counts as deleted.
func (k KernelConntrack) DeleteUDP(filters []ConntrackFilter) (int, error) {
	custom := make([]netlink.CustomConntrackFilter, len(filters))
	for i, f := range filters {
		if err := f.check(); err != nil {
			return 0, err
		}
		custom[i] = nlFilter(f)
	}
	h, err := nshandle.Open(k.NetNS)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, syscall.AF_INET, custom...)
	if err != nil {
		return int(n), fmt.Errorf("conntrack -D in %q: %w", k.NetNS, err)
	}
	return int(n), nil
}

// nlFilter matches with ConntrackFilter.matches rather than netlink's
// ConntrackFilter, which cannot say "not NATed".
type nlFilter ConntrackFilter

func (f nlFilter) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	return ConntrackFilter(f).matches(flowOf(fl))
}

// flowOf is a netlink flow as the filters see it (IPv4).
func flowOf(fl *netlink.ConntrackFlow) Flow {
	ap := func(ip []byte, port uint16) netip.AddrPort {
		a, _ := netip.AddrFromSlice(ip)
		return netip.AddrPortFrom(a.Unmap(), port)
	}
	proto := fmt.Sprint(fl.Forward.Protocol)
	switch fl.Forward.Protocol {
	case syscall.IPPROTO_UDP:
		proto = "udp"
	case syscall.IPPROTO_TCP:
		proto = "tcp"
	}
	return Flow{Proto: proto, Src: ap(fl.Forward.SrcIP, fl.Forward.SrcPort), Dst: ap(fl.Forward.DstIP, fl.Forward.DstPort),
		ReplySrc: ap(fl.Reverse.SrcIP, fl.Reverse.SrcPort)}
}
