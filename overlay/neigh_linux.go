//go:build linux

package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// withLink runs fn with a handle in ns and the index of dev there.
func withLink(ns, dev string, fn func(h *netlink.Handle, index int) error) error {
	return withHandle(ns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("get link %s in %s: %w", dev, nsLabel(ns), kerr(err))
		}
		return fn(h, l.Attrs().Index)
	})
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// SetARP implements [Neighbors].
func (netlinkKernel) SetARP(ns, dev string, ip netip.Addr, mac net.HardwareAddr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighSet(&netlink.Neigh{LinkIndex: index, Family: family(ip),
			State: netlink.NUD_PERMANENT, IP: ip.AsSlice(), HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("set arp %s lladdr %s on %s in %s: %w", ip, mac, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// DelARP implements [Neighbors].
func (netlinkKernel) DelARP(ns, dev string, ip netip.Addr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: family(ip), IP: ip.AsSlice()})
		if err != nil {
			return fmt.Errorf("del arp %s on %s in %s: %w", ip, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// ListARP implements [Neighbors].
func (netlinkKernel) ListARP(ns, dev string) ([]ARPEntry, error) {
	var out []ARPEntry
	err := withLink(ns, dev, func(h *netlink.Handle, index int) error {
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			neighs, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(index, fam) })
			if err != nil {
				return fmt.Errorf("list arp on %s in %s: %w", dev, nsLabel(ns), err)
			}
			for _, n := range neighs {
				ip, ok := netip.AddrFromSlice(n.IP)
				if !ok {
					continue
				}
				out = append(out, ARPEntry{IP: ip.Unmap(), MAC: n.HardwareAddr,
					Permanent: n.State&netlink.NUD_PERMANENT != 0, State: neighState(n.State)})
			}
		}
		return nil
	})
	return out, err
}

// SetFDB implements [Neighbors].
func (netlinkKernel) SetFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighSet(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE,
			State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: dst.AsSlice(), HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("set fdb %s via %s on %s in %s: %w", mac, dst, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// DelFDB implements [Neighbors].
func (netlinkKernel) DelFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_SELF, IP: dst.AsSlice(), HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("del fdb %s via %s on %s in %s: %w", mac, dst, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// ListFDB implements [Neighbors].
func (netlinkKernel) ListFDB(ns, dev string) ([]FDBEntry, error) {
	var out []FDBEntry
	err := withLink(ns, dev, func(h *netlink.Handle, index int) error {
		neighs, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(index, unix.AF_BRIDGE) })
		if err != nil {
			return fmt.Errorf("list fdb on %s in %s: %w", dev, nsLabel(ns), err)
		}
		for _, n := range neighs {
			dst, ok := netip.AddrFromSlice(n.IP)
			if n.Flags&netlink.NTF_SELF == 0 || !ok {
				continue // the bridge's own entries ("master br0") have no dst
			}
			out = append(out, FDBEntry{MAC: n.HardwareAddr, Dst: dst.Unmap(),
				Permanent: n.State&netlink.NUD_PERMANENT != 0})
		}
		return nil
	})
	return out, err
}

// SetBridgeFDB implements [Neighbors]. A bridge entry's state says what
// it is: NUD_NOARP a static one, NUD_PERMANENT the bridge's own address
// (frames for it go up to the bridge, not out of the port).
func (netlinkKernel) SetBridgeFDB(ns, dev string, mac net.HardwareAddr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighSet(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE,
			State: netlink.NUD_NOARP, Flags: netlink.NTF_MASTER, HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("set fdb %s master static on %s in %s: %w", mac, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// DelBridgeFDB implements [Neighbors].
func (netlinkKernel) DelBridgeFDB(ns, dev string, mac net.HardwareAddr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		err := h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE,
			Flags: netlink.NTF_MASTER, HardwareAddr: mac})
		if err != nil {
			return fmt.Errorf("del fdb %s master on %s in %s: %w", mac, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// ListBridgeFDB implements [Neighbors]. The bridge's entries carry no
// NTF_SELF; of those, static ones are NUD_NOARP.
func (netlinkKernel) ListBridgeFDB(ns, dev string) ([]net.HardwareAddr, error) {
	var out []net.HardwareAddr
	err := withLink(ns, dev, func(h *netlink.Handle, index int) error {
		neighs, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(index, unix.AF_BRIDGE) })
		if err != nil {
			return fmt.Errorf("list fdb master on %s in %s: %w", dev, nsLabel(ns), err)
		}
		for _, n := range neighs {
			if n.Flags&netlink.NTF_SELF != 0 || n.State&netlink.NUD_NOARP == 0 || n.Vlan != 0 {
				continue
			}
			out = append(out, n.HardwareAddr)
		}
		return nil
	})
	return out, err
}

// neighStates are the NUD states as "ip neigh" spells them.
var neighStates = []struct {
	bit  int
	name string
}{
	{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"},
	{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
	{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
}

// neighState spells a NUD state set as "ip neigh" does ("STALE", or
// "NOARP" for lo's entries); "NONE" for none.
func neighState(state int) string {
	var names []string
	for _, s := range neighStates {
		if state&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "NONE"
	}
	return strings.Join(names, " ")
}
