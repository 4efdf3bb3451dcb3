//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// byIndex stands for the device with ifindex index in the netlink calls
// that only read the index.
func byIndex(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func toAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

// SetAddr implements [Links].
func (netlinkKernel) SetAddr(ns, dev string, p netip.Prefix) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		if err := h.AddrReplace(byIndex(index), toAddr(p)); err != nil {
			return fmt.Errorf("replace addr %s on %s in %s: %w", p, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// DelAddr implements [Links].
func (netlinkKernel) DelAddr(ns, dev string, p netip.Prefix) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		// EADDRNOTAVAIL: the device does not hold it.
		if err := h.AddrDel(byIndex(index), toAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("del addr %s on %s in %s: %w", p, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// SetDefaultRoute implements [Stack].
func (netlinkKernel) SetDefaultRoute(ns, dev string, gw netip.Addr) error {
	return withLink(ns, dev, func(h *netlink.Handle, index int) error {
		if err := h.RouteReplace(&netlink.Route{Gw: gw.AsSlice(), LinkIndex: index}); err != nil {
			return fmt.Errorf("replace default route via %s dev %s in %s: %w", gw, dev, nsLabel(ns), kerr(err))
		}
		return nil
	})
}

// SetSysctl implements [Stack].
func (netlinkKernel) SetSysctl(ns, key, value string) error {
	if err := checkSysctlKey(key); err != nil {
		return err
	}
	if err := nsfile.WriteSysctl(ns, key, value); err != nil {
		return fmt.Errorf("set sysctl %s=%s in %s: %w", key, value, nsLabel(ns), kerr(err))
	}
	return nil
}

var _ Stack = netlinkKernel{}
