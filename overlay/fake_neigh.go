package overlay

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// SetARP implements [Neighbors].
func (f *FakeKernel) SetARP(ns, dev string, ip netip.Addr, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetARP"); err != nil {
		return err
	}
	l, err := f.link(fmt.Sprintf("set arp %s lladdr %s", ip, mac), ns, dev)
	if err != nil {
		return err
	}
	l.arp[ip] = ARPEntry{IP: ip, MAC: slices.Clone(mac), Permanent: true}
	f.record("SetARP", ns, dev, ip, mac)
	return nil
}

// DelARP implements [Neighbors].
func (f *FakeKernel) DelARP(ns, dev string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelARP"); err != nil {
		return err
	}
	op := fmt.Sprintf("del arp %s", ip)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if _, ok := l.arp[ip]; !ok {
		return errNotFound("%s on %s in %s: no such file or directory", op, dev, nsLabel(ns))
	}
	delete(l.arp, ip)
	f.record("DelARP", ns, dev, ip)
	return nil
}

// ListARP implements [Neighbors].
func (f *FakeKernel) ListARP(ns, dev string) ([]ARPEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListARP"); err != nil {
		return nil, err
	}
	l, err := f.link("list arp", ns, dev)
	if err != nil {
		return nil, err
	}
	var out []ARPEntry
	for _, ip := range slices.SortedFunc(maps.Keys(l.arp), netip.Addr.Compare) {
		e := l.arp[ip]
		e.MAC = slices.Clone(e.MAC)
		out = append(out, e)
	}
	return out, nil
}

// SetFDB implements [Neighbors]. Only VXLAN devices take a destination.
func (f *FakeKernel) SetFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetFDB"); err != nil {
		return err
	}
	op := fmt.Sprintf("set fdb %s via %s", mac, dst)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if l.Kind != "vxlan" {
		return &kernelError{err: fmt.Errorf("%s on %s in %s: operation not supported", op, dev, nsLabel(ns))}
	}
	l.fdb[mac.String()] = FDBEntry{MAC: slices.Clone(mac), Dst: dst, Permanent: true}
	f.record("SetFDB", ns, dev, mac, dst)
	return nil
}

// DelFDB implements [Neighbors]. The entry must have destination dst.
func (f *FakeKernel) DelFDB(ns, dev string, mac net.HardwareAddr, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelFDB"); err != nil {
		return err
	}
	op := fmt.Sprintf("del fdb %s via %s", mac, dst)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if e, ok := l.fdb[mac.String()]; !ok || e.Dst != dst {
		return errNotFound("%s on %s in %s: no such file or directory", op, dev, nsLabel(ns))
	}
	delete(l.fdb, mac.String())
	f.record("DelFDB", ns, dev, mac, dst)
	return nil
}

// ListFDB implements [Neighbors].
func (f *FakeKernel) ListFDB(ns, dev string) ([]FDBEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListFDB"); err != nil {
		return nil, err
	}
	l, err := f.link("list fdb", ns, dev)
	if err != nil {
		return nil, err
	}
	var out []FDBEntry
	for _, k := range slices.Sorted(maps.Keys(l.fdb)) {
		e := l.fdb[k]
		e.MAC = slices.Clone(e.MAC)
		out = append(out, e)
	}
	return out, nil
}

// SetBridgeFDB implements [Neighbors]. dev must be a bridge's port.
func (f *FakeKernel) SetBridgeFDB(ns, dev string, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetBridgeFDB"); err != nil {
		return err
	}
	op := fmt.Sprintf("set fdb %s master static", mac)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if l.Master == "" {
		return &kernelError{err: fmt.Errorf("%s on %s in %s: operation not supported", op, dev, nsLabel(ns))}
	}
	l.brfdb[mac.String()] = true
	f.record("SetBridgeFDB", ns, dev, mac)
	return nil
}

// DelBridgeFDB implements [Neighbors].
func (f *FakeKernel) DelBridgeFDB(ns, dev string, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelBridgeFDB"); err != nil {
		return err
	}
	op := fmt.Sprintf("del fdb %s master", mac)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if !l.brfdb[mac.String()] {
		return errNotFound("%s on %s in %s: no such file or directory", op, dev, nsLabel(ns))
	}
	delete(l.brfdb, mac.String())
	f.record("DelBridgeFDB", ns, dev, mac)
	return nil
}

// ListBridgeFDB implements [Neighbors].
func (f *FakeKernel) ListBridgeFDB(ns, dev string) ([]net.HardwareAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListBridgeFDB"); err != nil {
		return nil, err
	}
	l, err := f.link("list fdb master", ns, dev)
	if err != nil {
		return nil, err
	}
	var out []net.HardwareAddr
	for _, k := range slices.Sorted(maps.Keys(l.brfdb)) {
		mac, _ := net.ParseMAC(k)
		out = append(out, mac)
	}
	return out, nil
}

// Dump prints the whole model, namespace by namespace (the host first,
// then by path), in the words of "ip -d link", "bridge fdb show" and "ip
// neigh show", each part sorted:
//
//	netns /run/meshd/netns/1-abcdef0123
//	  br0: mtu 1450 UP bridge inet 10.0.0.1/24
//	  vxlan0: mtu 1450 master br0 UP vxlan id 4097 local 192.168.0.10 dstport 4789 nolearning proxy
//	  fdb 02:42:0a:00:00:03 dev vxlan0 master br0 static
//	  fdb 02:42:0a:00:00:03 dev vxlan0 dst 192.168.0.11 self permanent
//	  neigh 10.0.0.3 dev vxlan0 lladdr 02:42:0a:00:00:03 PERMANENT
func (f *FakeKernel) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, path := range slices.Sorted(maps.Keys(f.ns)) {
		n := f.ns[path]
		fmt.Fprintf(&b, "netns %s\n", label(path))
		names := slices.Sorted(maps.Keys(n.links))
		for _, name := range names {
			fmt.Fprintf(&b, "  %s\n", f.linkLine(n.links[name]))
		}
		for _, name := range names {
			l := n.links[name]
			for _, k := range slices.Sorted(maps.Keys(l.brfdb)) {
				fmt.Fprintf(&b, "  fdb %s dev %s master %s static\n", k, name, l.Master)
			}
			for _, k := range slices.Sorted(maps.Keys(l.fdb)) {
				e := l.fdb[k]
				fmt.Fprintf(&b, "  fdb %s dev %s dst %s self permanent\n", e.MAC, name, e.Dst)
			}
		}
		for _, name := range names {
			l := n.links[name]
			for _, ip := range slices.SortedFunc(maps.Keys(l.arp), netip.Addr.Compare) {
				fmt.Fprintf(&b, "  neigh %s dev %s lladdr %s PERMANENT\n", ip, name, l.arp[ip].MAC)
			}
		}
		dumpStack(&b, n)
	}
	return b.String()
}

func (f *FakeKernel) linkLine(l *fakeLink) string {
	s := fmt.Sprintf("%s: mtu %d", l.Name, l.MTU)
	if l.Master != "" {
		s += " master " + l.Master
	}
	if l.Up {
		s += " UP"
	} else {
		s += " DOWN"
	}
	s += " " + l.Kind
	switch l.Kind {
	case "vxlan":
		s += fmt.Sprintf(" id %d local %s dstport %d nolearning proxy", l.VNI, l.Src, l.Port)
		if l.hostNS != "" {
			s += " socket in " + l.hostNS
		}
	case "veth":
		s += fmt.Sprintf(" peer %s in %s", l.peerName, label(l.peerNS))
	}
	if l.MAC != nil {
		s += " address " + l.MAC.String()
	}
	for _, a := range l.Addrs {
		s += " inet " + a.String()
	}
	return s
}

func label(ns string) string {
	if ns == "" {
		return "host"
	}
	return ns
}
