package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// addNetns is "ip netns add NAME": [nsfile.Ensure] in /run/netns, which
// also turns IPv6 off (the underlay is IPv4, as in the tutorials: no
// link-local routes, no router solicitations) and brings lo up. Like ip, it
// fails if the namespace exists.
func addNetns(name string) error {
	created, err := nsfile.Ensure(netnsPath(name))
	if err != nil {
		return err
	}
	if !created {
		return fmt.Errorf("add netns %s: already exists", name)
	}
	return nil
}

// withHandle runs fn with a netlink handle inside namespace name. The
// handle's sockets live in that namespace; no thread of ours switches.
func withHandle(name string, fn func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// wire builds the underlay: "ip link add br0 type bridge" in the underlay
// namespace, then per member a veth whose bridge side stays there and whose
// eth0 side is created directly in the member's namespace, so no link ever
// exists in the host namespace, not even for a moment.
func (l *Lab) wire() error {
	underlay := l.prefix + underlaySuffix
	return withHandle(underlay, func(h *netlink.Handle) error {
		// The underlay is only a wire: no address at all, not even lo's.
		if lo, err := h.LinkByName("lo"); err != nil || h.LinkSetDown(lo) != nil {
			return fmt.Errorf("set lo down in %s: %v", underlay, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: mtu}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge %s in %s: %w", bridgeName, underlay, err)
		}
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("set %s up in %s: %w", bridgeName, underlay, err)
		}
		for _, m := range l.nodes {
			if err := plug(h, br.Attrs().Index, m); err != nil {
				return err
			}
			if err := configure(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// plug is "ip link add <ns> master br0 up type veth peer eth0 netns <ns>"
// run in the underlay: the bridge port is named after the member.
func plug(h *netlink.Handle, brIndex int, m Node) error {
	ns, err := netns.GetFromPath(netnsPath(m.Netns))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", m.Netns, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: m.Netns, MTU: mtu, MasterIndex: brIndex},
		PeerName:      ifName,
		PeerMTU:       mtu,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s peer %s in %s: %w", m.Netns, ifName, m.Netns, err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set veth %s up: %w", m.Netns, err)
	}
	return nil
}

// configure is "ip link set lo up; ip addr add ADDR/24 dev eth0; ip link set
// eth0 up" in the member's namespace. No route is added: the /24 is on-link.
func configure(m Node) error {
	return withHandle(m.Netns, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("set lo up in %s: %w", m.Netns, err)
		}
		eth, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", ifName, m.Netns, err)
		}
		ipn := &net.IPNet{IP: m.Addr.AsSlice(), Mask: net.CIDRMask(underlayNet.Bits(), 32)}
		if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("add addr %s dev %s in %s: %w", ipn, ifName, m.Netns, err)
		}
		if err := h.LinkSetUp(eth); err != nil {
			return fmt.Errorf("set %s up in %s: %w", ifName, m.Netns, err)
		}
		return nil
	})
}

// CheckHermetic returns an error naming every route of every namespace of
// the lab, in any table but "local", that is a default route or leads
// outside 192.168.33.0/24: proof that no packet of the lab can leave it. It
// checks the lab as Up built it; a running meshd adds routes of its own
// (mesh_gwbridge) to the nodes.
func (l *Lab) CheckHermetic() error {
	var errs []error
	for _, ns := range netnsNames(l.prefix, l.n) {
		err := withHandle(ns, func(h *netlink.Handle) error {
			filter := &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}
			routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
			if err != nil {
				return fmt.Errorf("list routes in %s: %w", ns, err)
			}
			for _, r := range routes {
				if r.Table == syscall.RT_TABLE_LOCAL {
					continue
				}
				if !inUnderlay(r.Dst) {
					errs = append(errs, fmt.Errorf("netns %s: route %s leaves the lab", ns, r))
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func inUnderlay(dst *net.IPNet) bool {
	if dst == nil { // the default route
		return false
	}
	ones, bits := dst.Mask.Size()
	ip, ok := netip.AddrFromSlice(dst.IP.To4())
	return ok && bits == 32 && ones >= underlayNet.Bits() && underlayNet.Contains(ip)
}
