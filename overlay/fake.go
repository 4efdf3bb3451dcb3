package overlay

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// FakeKernel is an in-memory model of the namespaces, devices and
// neighbour tables [Overlay] programs. It refuses what the kernel would
// refuse (a device in a missing namespace, a port of a missing bridge, an
// FDB entry on a missing device, a second VXLAN device with the same VNI
// and port in one host namespace, a veth peer into a missing namespace),
// and a refused call changes nothing. The host namespace ("") always
// exists; create sandboxes with EnsureNS.
//
// It also keeps a journal of the calls that succeeded and changed
// something ([FakeKernel.Calls]) and can be told to fail the next call of
// a method ([FakeKernel.FailNext]). It is safe for concurrent use.
type FakeKernel struct {
	mu    sync.Mutex // guards the fields below
	ns    map[string]*fakeNS
	index int // last ifindex handed out
	calls []string
	fail  map[string]error
}

var (
	_ Kernel     = (*FakeKernel)(nil)
	_ Namespaces = (*FakeKernel)(nil)
	_ Links      = (*FakeKernel)(nil)
	_ Neighbors  = (*FakeKernel)(nil)
	_ Stack      = (*FakeKernel)(nil)
)

type fakeNS struct {
	links  map[string]*fakeLink
	route  *fakeRoute        // the default route; nil for none
	sysctl map[string]string // written values by key; unwritten ones are the kernel's default
}

type fakeRoute struct {
	dev string
	gw  netip.Addr
}

type fakeLink struct {
	Link             // Addrs sorted; PeerIndex computed on listing
	hostNS           string
	peerNS, peerName string
	arp              map[netip.Addr]ARPEntry
	fdb              map[string]FDBEntry // by MAC: one remote each
	brfdb            map[string]bool     // static entries of its bridge for this port, by MAC
}

// NewFakeKernel returns a model holding only the host namespace.
func NewFakeKernel() *FakeKernel {
	return &FakeKernel{ns: map[string]*fakeNS{"": newFakeNS()}, fail: map[string]error{}}
}

func newFakeNS() *fakeNS {
	return &fakeNS{links: map[string]*fakeLink{}, sysctl: map[string]string{}}
}

// Calls returns the journal: one line per successful changing call, e.g.
// "SetFDB /ns/1-abc vxlan0 02:42:0a:00:00:03 192.168.0.11".
func (f *FakeKernel) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls empties the journal.
func (f *FakeKernel) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// FailNext makes the next call of method (e.g. "SetFDB") return err
// without changing anything.
func (f *FakeKernel) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

// LinkSetDown is "ip link set NAME down", for drift tests.
func (f *FakeKernel) LinkSetDown(ns, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.link("link set down", ns, name)
	if err != nil {
		return err
	}
	l.Up = false
	f.flushRoutes(ns, name) // as IPv4 does when a device goes down
	f.record("LinkSetDown", ns, name)
	return nil
}

// injected consumes the failure FailNext armed for method, if any.
func (f *FakeKernel) injected(method string) error {
	if err, ok := f.fail[method]; ok {
		delete(f.fail, method)
		return err
	}
	return nil
}

func (f *FakeKernel) record(method string, args ...any) {
	parts := []string{method}
	for _, a := range args {
		s := fmt.Sprint(a)
		if s == "" {
			s = "host"
		}
		parts = append(parts, s)
	}
	f.calls = append(f.calls, strings.Join(parts, " "))
}

func (f *FakeKernel) netns(op, path string) (*fakeNS, error) {
	n, ok := f.ns[path]
	if !ok {
		return nil, errNotFound("%s: %s: no such file or directory", op, nsLabel(path))
	}
	return n, nil
}

func (f *FakeKernel) link(op, ns, name string) (*fakeLink, error) {
	n, err := f.netns(op, ns)
	if err != nil {
		return nil, err
	}
	l, ok := n.links[name]
	if !ok {
		return nil, errNotFound("%s: link %s in %s: no such device", op, name, nsLabel(ns))
	}
	return l, nil
}

// EnsureNS implements [Namespaces].
func (f *FakeKernel) EnsureNS(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("EnsureNS"); err != nil {
		return err
	}
	if _, ok := f.ns[path]; ok {
		return nil
	}
	f.ns[path] = newFakeNS()
	f.record("EnsureNS", path)
	return nil
}

// RemoveNS implements [Namespaces]. Its devices go with it, and so do the
// other ends of its veths.
func (f *FakeKernel) RemoveNS(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("RemoveNS"); err != nil {
		return err
	}
	if path == "" {
		return errors.New("del netns: cannot remove the host namespace")
	}
	n, ok := f.ns[path]
	if !ok {
		return nil
	}
	for _, l := range n.links {
		f.removeLink(path, l)
	}
	delete(f.ns, path)
	f.record("RemoveNS", path)
	return nil
}

// ListNS implements [Namespaces].
func (f *FakeKernel) ListNS(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListNS"); err != nil {
		return nil, err
	}
	var names []string
	for p := range f.ns {
		if p != "" && filepath.Dir(p) == filepath.Clean(dir) {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

// EnsureBridge implements [Links].
func (f *FakeKernel) EnsureBridge(spec BridgeSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("EnsureBridge"); err != nil {
		return err
	}
	op := "ensure bridge " + spec.Name
	n, err := f.netns(op, spec.NS)
	if err != nil {
		return err
	}
	l, ok := n.links[spec.Name]
	if ok {
		if why := bridgeIncompat(l.Link); why != "" {
			return errExists("%s in %s: exists: %s", op, nsLabel(spec.NS), why)
		}
	} else {
		l = f.newLink(n, spec.Name, "bridge")
	}
	fixFake(l, spec.MTU, nil, spec.Addr, spec.MAC)
	f.record("EnsureBridge", spec.NS, spec.Name)
	return nil
}

// EnsureVXLAN implements [Links].
func (f *FakeKernel) EnsureVXLAN(spec VXLANSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("EnsureVXLAN"); err != nil {
		return err
	}
	op := fmt.Sprintf("ensure vxlan %s (vni %d, dstport %d)", spec.Name, spec.VNI, spec.Port)
	n, err := f.netns(op, spec.NS)
	if err != nil {
		return err
	}
	if _, err := f.netns(op, spec.HostNS); err != nil {
		return err
	}
	master, err := f.master(op, n, spec.NS, spec.Master)
	if err != nil {
		return err
	}
	l, ok := n.links[spec.Name]
	if ok {
		if why := vxlanIncompat(spec, l.Link); why != "" {
			return errExists("%s in %s: exists: %s", op, nsLabel(spec.NS), why)
		}
	} else {
		if owner := f.vniOwner(spec); owner != "" {
			return errExists("%s: add in %s: file exists (held by %s)", op, nsLabel(spec.HostNS), owner)
		}
		l = f.newLink(n, spec.Name, "vxlan")
		l.VNI, l.Port, l.Src, l.Proxy, l.hostNS = spec.VNI, spec.Port, spec.Src, true, spec.HostNS
	}
	fixFake(l, spec.MTU, master, netip.Prefix{}, nil)
	f.record("EnsureVXLAN", spec.NS, spec.Name, spec.VNI)
	return nil
}

// vniOwner names the VXLAN device already using spec's VNI and port from
// spec.HostNS, as the kernel checks; "" if none.
func (f *FakeKernel) vniOwner(spec VXLANSpec) string {
	for path, n := range f.ns {
		for _, l := range n.links {
			if l.Kind == "vxlan" && l.hostNS == spec.HostNS && l.VNI == spec.VNI && l.Port == spec.Port {
				return l.Name + " in " + nsLabel(path)
			}
		}
	}
	return ""
}

// master returns the bridge called name in n; nil for "".
func (f *FakeKernel) master(op string, n *fakeNS, ns, name string) (*fakeLink, error) {
	if name == "" {
		return nil, nil
	}
	m, ok := n.links[name]
	if !ok || m.Kind != "bridge" {
		return nil, errNotFound("%s: master %s in %s: no such bridge", op, name, nsLabel(ns))
	}
	return m, nil
}

// EnsureVeth implements [Links].
func (f *FakeKernel) EnsureVeth(spec VethSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("EnsureVeth"); err != nil {
		return err
	}
	op := fmt.Sprintf("ensure veth %s peer %s", spec.Name, spec.PeerName)
	n, err := f.netns(op, spec.NS)
	if err != nil {
		return err
	}
	pn, err := f.netns(op, spec.PeerNS)
	if err != nil {
		return err
	}
	master, err := f.master(op, n, spec.NS, spec.Master)
	if err != nil {
		return err
	}
	end, peer := n.links[spec.Name], pn.links[spec.PeerName]
	if why := vethIncompat(spec, f.view(end), f.view(peer)); why != "" {
		return errExists("%s in %s: exists: %s", op, nsLabel(spec.NS), why)
	}
	if end == nil {
		end, peer = f.newLink(n, spec.Name, "veth"), f.newLink(pn, spec.PeerName, "veth")
		end.peerNS, end.peerName = spec.PeerNS, spec.PeerName
		peer.peerNS, peer.peerName = spec.NS, spec.Name
	}
	fixFake(end, spec.MTU, master, netip.Prefix{}, nil)
	fixFake(peer, spec.MTU, nil, spec.PeerAddr, spec.PeerMAC)
	f.record("EnsureVeth", spec.NS, spec.Name, spec.PeerNS, spec.PeerName)
	return nil
}

func (f *FakeKernel) newLink(n *fakeNS, name, kind string) *fakeLink {
	f.index++
	l := &fakeLink{Link: Link{Name: name, Kind: kind, Index: f.index},
		arp: map[netip.Addr]ARPEntry{}, fdb: map[string]FDBEntry{}, brfdb: map[string]bool{}}
	n.links[name] = l
	return l
}

// fixFake sets what EnsureX repairs in place; zero arguments are skipped.
func fixFake(l *fakeLink, mtu int, master *fakeLink, addr netip.Prefix, mac net.HardwareAddr) {
	l.MTU, l.Up = mtu, true
	if master != nil {
		if l.Master != master.Name {
			clear(l.brfdb) // a port's bridge entries go when it leaves its bridge
		}
		l.Master = master.Name
	}
	if mac != nil {
		l.MAC = slices.Clone(mac)
	}
	if addr.IsValid() {
		addFakeAddr(l, addr)
	}
}

// addFakeAddr gives l the address p unless it holds it. As in IPv4, an
// address is the pair of IP and prefix length.
func addFakeAddr(l *fakeLink, p netip.Prefix) {
	if !slices.Contains(l.Addrs, p) {
		l.Addrs = append(l.Addrs, p)
		slices.SortFunc(l.Addrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	}
}

// view is what ListLinks reports for l; nil for nil.
func (f *FakeKernel) view(l *fakeLink) *Link {
	if l == nil {
		return nil
	}
	v := l.Link
	v.MAC = slices.Clone(l.MAC)
	v.Addrs = slices.Clone(l.Addrs)
	if l.Kind == "veth" {
		if pn, ok := f.ns[l.peerNS]; ok && pn.links[l.peerName] != nil {
			v.PeerIndex = pn.links[l.peerName].Index
		}
	}
	return &v
}

// RemoveLink implements [Links].
func (f *FakeKernel) RemoveLink(ns, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("RemoveLink"); err != nil {
		return err
	}
	n, err := f.netns("del link "+name, ns)
	if err != nil {
		return err
	}
	l, ok := n.links[name]
	if !ok {
		return nil
	}
	f.removeLink(ns, l)
	f.record("RemoveLink", ns, name)
	return nil
}

func (f *FakeKernel) removeLink(ns string, l *fakeLink) {
	n := f.ns[ns]
	delete(n.links, l.Name)
	f.forgetLink(ns, l.Name)
	for _, p := range n.links {
		if p.Master == l.Name {
			p.Master = ""
			clear(p.brfdb)
		}
	}
	if l.Kind == "veth" {
		if pn, ok := f.ns[l.peerNS]; ok {
			delete(pn.links, l.peerName)
			f.forgetLink(l.peerNS, l.peerName)
		}
	}
}

// ListLinks implements [Links].
func (f *FakeKernel) ListLinks(ns string) ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListLinks"); err != nil {
		return nil, err
	}
	n, err := f.netns("list links", ns)
	if err != nil {
		return nil, err
	}
	var out []Link
	for _, name := range slices.Sorted(maps.Keys(n.links)) {
		out = append(out, *f.view(n.links[name]))
	}
	return out, nil
}
