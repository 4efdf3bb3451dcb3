package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ensureNetnsDir makes /run/netns a shared mount point, as "ip netns add"
// does, so that unmounting a namespace there also unmounts the copies that
// mount namespaces made since hold, and the namespace really goes away.
func ensureNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", netnsDir, err)
	}
	for range 2 {
		err := syscall.Mount("", netnsDir, "none", syscall.MS_SHARED|syscall.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EINVAL) { // EINVAL: not a mount point yet
			return fmt.Errorf("make %s shared: %w", netnsDir, err)
		}
		if err := syscall.Mount(netnsDir, netnsDir, "none", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", netnsDir, err)
		}
	}
	return fmt.Errorf("make %s shared: still not a mount point", netnsDir)
}

// createNetns is "ip netns add NAME" with IPv6 off inside. It unshares on a
// locked thread it never unlocks: the runtime ends that thread with the
// goroutine, so no other goroutine ever runs in the new namespace and
// there is nothing to restore.
func createNetns(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- unshareNamed(name)
	}()
	return <-errc
}

func unshareNamed(name string) error {
	path := netnsPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("add netns %s: %w", name, err)
	}
	f.Close()
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		os.Remove(path)
		return fmt.Errorf("add netns %s: unshare: %w", name, err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid())
	if err := syscall.Mount(self, path, "none", syscall.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("add netns %s: bind: %w", name, err)
	}
	// The underlay is IPv4, as in the tutorials. IPv6 would add link-local
	// routes and router solicitations; "default" covers links made later.
	// /proc/sys/net is the namespace of the calling thread: this one.
	for _, conf := range []string{"all", "default"} {
		p := filepath.Join("/proc/sys/net/ipv6/conf", conf, "disable_ipv6")
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("add netns %s: disable ipv6: %w", name, err)
		}
	}
	return nil
}

// deleteNetns is "ip netns del NAME", also for a file left unmounted. The
// namespace itself goes when its last process and mount are gone.
func deleteNetns(name string) error {
	path := netnsPath(name)
	err := syscall.Unmount(path, syscall.MNT_DETACH)
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("del netns %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("del netns %s: %w", name, err)
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
