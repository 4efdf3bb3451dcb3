//go:build linux

package overlay

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/nshandle"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkKernel is the real [Kernel]. Each call opens a netlink handle in
// the namespace it names (nsfile.Handle) and closes it before returning:
// a cached handle would keep a removed namespace, and the VXLAN VNIs in
// it, alive.
type netlinkKernel struct{}

func newKernel() Kernel { return netlinkKernel{} }

var _ Kernel = netlinkKernel{}

// kerr classifies a kernel error for isNotFound/isExists.
func kerr(err error) error {
	var lnf netlink.LinkNotFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &lnf), errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV),
		errors.Is(err, unix.ESRCH):
		return &kernelError{code: codeNotFound, err: err}
	case errors.Is(err, unix.EEXIST):
		return &kernelError{code: codeExists, err: err}
	}
	return err
}

func handle(ns string) (*netlink.Handle, error) {
	h, err := nshandle.Open(ns)
	return h, kerr(err)
}

// withHandle runs fn with a handle in ns.
func withHandle(ns string, fn func(h *netlink.Handle) error) error {
	h, err := handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

// lookup returns the link called name in h, or nil if there is none.
func lookup(h *netlink.Handle, ns, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err = kerr(err); isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get link %s in %s: %w", name, nsLabel(ns), err)
	}
	return l, nil
}

// retryDump repeats a netlink dump the kernel interrupted (the table
// changed under it), a few times.
func retryDump[T any](fn func() ([]T, error)) ([]T, error) {
	for range 3 {
		out, err := fn()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, kerr(err)
		}
	}
	return fn()
}

// EnsureNS implements [Namespaces]; it also makes the directory a shared
// mount point, as "ip netns add" does.
func (netlinkKernel) EnsureNS(path string) error {
	if path == "" {
		return errors.New("add netns: empty path")
	}
	if err := nsfile.PrepareDir(filepath.Dir(path)); err != nil {
		return err
	}
	_, err := nsfile.Ensure(path)
	return err
}

// RemoveNS implements [Namespaces].
func (netlinkKernel) RemoveNS(path string) error {
	if path == "" {
		return errors.New("del netns: cannot remove the host namespace")
	}
	return nsfile.Remove(path)
}

// ListNS implements [Namespaces].
func (netlinkKernel) ListNS(dir string) ([]string, error) { return nsfile.List(dir) }

// ListLinks implements [Links].
func (netlinkKernel) ListLinks(ns string) ([]Link, error) {
	var out []Link
	err := withHandle(ns, func(h *netlink.Handle) error {
		links, err := retryDump(h.LinkList)
		if err != nil {
			return fmt.Errorf("list links in %s: %w", nsLabel(ns), err)
		}
		addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return fmt.Errorf("list addrs in %s: %w", nsLabel(ns), err)
		}
		names := map[int]string{}
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		for _, l := range links {
			out = append(out, toLink(l, names, addrs))
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
	return out, err
}

// toLink converts what netlink reports; names maps ifindex to name for
// the master, addrs may hold other links' addresses too.
func toLink(l netlink.Link, names map[int]string, addrs []netlink.Addr) Link {
	a := l.Attrs()
	out := Link{
		Name:   a.Name,
		Kind:   l.Type(),
		Index:  a.Index,
		Master: names[a.MasterIndex],
		MTU:    a.MTU,
		Up:     a.Flags&net.FlagUp != 0,
		MAC:    a.HardwareAddr,

		OperState: operState(a.OperState),
	}
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok || ad.LinkIndex != a.Index || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		bits, _ := ad.Mask.Size()
		out.Addrs = append(out.Addrs, netip.PrefixFrom(ip.Unmap(), bits))
	}
	slices.SortFunc(out.Addrs, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	switch v := l.(type) {
	case *netlink.Vxlan:
		src, _ := netip.AddrFromSlice(v.SrcAddr)
		out.VNI, out.Port, out.Src = uint32(v.VxlanId), v.Port, src.Unmap()
		out.Learning, out.Proxy = v.Learning, v.Proxy
	case *netlink.Veth:
		out.PeerIndex, out.PeerNetNSID = a.ParentIndex, a.NetNsID
	}
	return out
}

// operState spells s as "ip link" does ("UP", not netlink's "up").
func operState(s netlink.LinkOperState) string {
	return strings.ToUpper(strings.ReplaceAll(s.String(), "-", ""))
}

// fix sets what Ensure repairs in place; zero arguments are skipped.
func fix(h *netlink.Handle, ns string, l netlink.Link, mtu int, master string, addr netip.Prefix, mac net.HardwareAddr) error {
	a := l.Attrs()
	where := fmt.Sprintf("%s in %s", a.Name, nsLabel(ns))
	if a.MTU != mtu {
		if err := h.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set mtu %d of %s: %w", mtu, where, kerr(err))
		}
	}
	if mac != nil && a.HardwareAddr.String() != mac.String() {
		if err := h.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set address %s of %s: %w", mac, where, kerr(err))
		}
	}
	if master != "" {
		m, err := h.LinkByName(master)
		if err == nil && a.MasterIndex != m.Attrs().Index {
			err = h.LinkSetMaster(l, m)
		}
		if err != nil {
			return fmt.Errorf("set master %s of %s: %w", master, where, kerr(err))
		}
	}
	if addr.IsValid() {
		ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("add addr %s to %s: %w", addr, where, kerr(err))
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", where, kerr(err))
		}
	}
	return nil
}

// EnsureBridge implements [Links].
func (netlinkKernel) EnsureBridge(spec BridgeSpec) error {
	return withHandle(spec.NS, func(h *netlink.Handle) error {
		l, err := lookup(h, spec.NS, spec.Name)
		if err != nil {
			return err
		}
		if l == nil {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: spec.Name, MTU: spec.MTU, HardwareAddr: spec.MAC}}
			if err := h.LinkAdd(br); err != nil {
				return fmt.Errorf("add bridge %s in %s: %w", spec.Name, nsLabel(spec.NS), kerr(err))
			}
			return undoOnError(h, br, fix(h, spec.NS, br, spec.MTU, "", spec.Addr, spec.MAC))
		}
		if why := bridgeIncompat(toLink(l, nil, nil)); why != "" {
			return errExists("ensure bridge %s in %s: exists: %s", spec.Name, nsLabel(spec.NS), why)
		}
		return fix(h, spec.NS, l, spec.MTU, "", spec.Addr, spec.MAC)
	})
}

// undoOnError deletes a link just created when setting it up failed, so
// a failed Ensure leaves nothing behind.
func undoOnError(h *netlink.Handle, l netlink.Link, err error) error {
	if err != nil {
		_ = h.LinkDel(l) // the error to report is err
	}
	return err
}

// EnsureVXLAN implements [Links].
func (netlinkKernel) EnsureVXLAN(spec VXLANSpec) error {
	return withHandle(spec.NS, func(h *netlink.Handle) error {
		l, err := lookup(h, spec.NS, spec.Name)
		if err != nil {
			return err
		}
		if l == nil {
			l, err = createVXLAN(h, spec)
			if err != nil {
				return err
			}
			return undoOnError(h, l, fixVXLANPort(h, spec, l))
		}
		if why := vxlanIncompat(spec, toLink(l, nil, nil)); why != "" {
			return errExists("ensure vxlan %s in %s: exists: %s", spec.Name, nsLabel(spec.NS), why)
		}
		return fixVXLANPort(h, spec, l)
	})
}

// fixVXLANPort repairs vxlan0 and turns learning off on its bridge port
// too: br0 would otherwise learn remote MACs behind vxlan0 and keep them
// for 300 s after the peer is gone. br0 gets a static entry per remote
// MAC instead (SetPeers), and vxlan0's own permanent FDB entries then
// pick the VTEP.
func fixVXLANPort(h *netlink.Handle, spec VXLANSpec, l netlink.Link) error {
	if err := fix(h, spec.NS, l, spec.MTU, spec.Master, netip.Prefix{}, nil); err != nil {
		return err
	}
	if spec.Master == "" {
		return nil
	}
	if err := h.LinkSetLearning(l, false); err != nil {
		return fmt.Errorf("set learning off on bridge port %s in %s: %w", spec.Name, nsLabel(spec.NS), kerr(err))
	}
	return nil
}

// createVXLAN adds the device in spec.HostNS under a temporary name, so
// that its UDP socket lives there, moves it into spec.NS (h's namespace)
// and renames it. On failure it deletes what it made.
func createVXLAN(h *netlink.Handle, spec VXLANSpec) (netlink.Link, error) {
	hh, err := handle(spec.HostNS)
	if err != nil {
		return nil, err
	}
	defer hh.Close()
	tmp := fmt.Sprintf("%s%06x-%04x", vxlanTempPrefix, spec.VNI, rand.N(0x10000))
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: tmp, MTU: spec.MTU},
		VxlanId:   int(spec.VNI),
		SrcAddr:   spec.Src.AsSlice(),
		Port:      spec.Port,
		Learning:  false,
		Proxy:     true,
	}
	if err := addVXLAN(spec.HostNS, vx); err != nil {
		return nil, fmt.Errorf("add vxlan %s (vni %d, dstport %d) in %s: %w",
			tmp, spec.VNI, spec.Port, nsLabel(spec.HostNS), kerr(err))
	}
	fd, err := nsfile.Fd(spec.NS)
	if err == nil {
		err = hh.LinkSetNsFd(vx, int(fd))
		fd.Close()
	}
	if err != nil {
		_ = hh.LinkDel(vx) // the error to report is err
		return nil, fmt.Errorf("move vxlan %s to %s: %w", tmp, nsLabel(spec.NS), kerr(err))
	}
	moved, err := h.LinkByName(tmp)
	if err == nil {
		if err = h.LinkSetName(moved, spec.Name); err != nil {
			_ = h.LinkDel(moved) // the error to report is err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rename vxlan %s to %s in %s: %w", tmp, spec.Name, nsLabel(spec.NS), kerr(err))
	}
	l, err := h.LinkByName(spec.Name)
	return l, kerr(err)
}

// EnsureVeth implements [Links].
func (netlinkKernel) EnsureVeth(spec VethSpec) error {
	return withHandle(spec.NS, func(h *netlink.Handle) error {
		return withHandle(spec.PeerNS, func(ph *netlink.Handle) error {
			return ensureVeth(h, ph, spec)
		})
	})
}

func ensureVeth(h, ph *netlink.Handle, spec VethSpec) error {
	end, err := lookup(h, spec.NS, spec.Name)
	if err != nil {
		return err
	}
	peer, err := lookup(ph, spec.PeerNS, spec.PeerName)
	if err != nil {
		return err
	}
	if why := vethIncompat(spec, linkOrNil(end), linkOrNil(peer)); why != "" {
		return errExists("ensure veth %s peer %s in %s: exists: %s", spec.Name, spec.PeerName, nsLabel(spec.NS), why)
	}
	created := end == nil
	if created {
		if end, peer, err = createVeth(h, ph, spec); err != nil {
			return err
		}
	}
	err = fix(h, spec.NS, end, spec.MTU, spec.Master, netip.Prefix{}, nil)
	if err == nil {
		err = fix(ph, spec.PeerNS, peer, spec.MTU, "", spec.PeerAddr, spec.PeerMAC)
	}
	if created {
		return undoOnError(h, end, err)
	}
	return err
}

func linkOrNil(l netlink.Link) *Link {
	if l == nil {
		return nil
	}
	v := toLink(l, nil, nil)
	return &v
}

// createVeth adds the pair from inside spec.NS with the peer placed
// straight into spec.PeerNS, so it never appears anywhere else.
func createVeth(h, ph *netlink.Handle, spec VethSpec) (end, peer netlink.Link, err error) {
	fd, err := nsfile.Fd(spec.PeerNS)
	if err != nil {
		return nil, nil, kerr(err)
	}
	defer fd.Close()
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: spec.Name, MTU: spec.MTU},
		PeerName:         spec.PeerName,
		PeerHardwareAddr: spec.PeerMAC,
		PeerMTU:          uint32(spec.MTU),
		PeerNamespace:    netlink.NsFd(fd),
	}
	if err := h.LinkAdd(v); err != nil {
		return nil, nil, fmt.Errorf("add veth %s in %s peer %s in %s: %w",
			spec.Name, nsLabel(spec.NS), spec.PeerName, nsLabel(spec.PeerNS), kerr(err))
	}
	if end, err = h.LinkByName(spec.Name); err == nil {
		peer, err = ph.LinkByName(spec.PeerName)
	}
	if err != nil {
		_ = h.LinkDel(v) // the error to report is err
		return nil, nil, fmt.Errorf("get veth %s peer %s: %w", spec.Name, spec.PeerName, kerr(err))
	}
	return end, peer, nil
}

// RemoveLink implements [Links].
func (netlinkKernel) RemoveLink(ns, name string) error {
	return withHandle(ns, func(h *netlink.Handle) error {
		l, err := lookup(h, ns, name)
		if err != nil || l == nil {
			return err
		}
		if err := h.LinkDel(l); err != nil && !isNotFound(kerr(err)) {
			return fmt.Errorf("del link %s in %s: %w", name, nsLabel(ns), kerr(err))
		}
		return nil
	})
}
