package overlay

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// SetAddr implements [Links].
func (f *FakeKernel) SetAddr(ns, dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetAddr"); err != nil {
		return err
	}
	l, err := f.link(fmt.Sprintf("replace addr %s", p), ns, dev)
	if err != nil {
		return err
	}
	if !p.IsValid() {
		return fmt.Errorf("replace addr %s on %s in %s: invalid argument", p, dev, nsLabel(ns))
	}
	if !slices.Contains(l.Addrs, p) {
		addFakeAddr(l, p)
		f.record("SetAddr", ns, dev, p)
	}
	return nil
}

// DelAddr implements [Links].
func (f *FakeKernel) DelAddr(ns, dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelAddr"); err != nil {
		return err
	}
	l, err := f.link(fmt.Sprintf("del addr %s", p), ns, dev)
	if err != nil {
		return err
	}
	i := slices.Index(l.Addrs, p)
	if i < 0 {
		return nil
	}
	l.Addrs = slices.Delete(l.Addrs, i, i+1)
	if len(l.Addrs) == 0 {
		f.flushRoutes(ns, dev) // IPv4 drops a device's routes with its last address
	}
	f.record("DelAddr", ns, dev, p)
	return nil
}

// SetDefaultRoute implements [Stack]. Like the kernel, it wants the
// gateway inside a subnet the device holds (and not one of its own
// addresses) and the device up.
func (f *FakeKernel) SetDefaultRoute(ns, dev string, gw netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetDefaultRoute"); err != nil {
		return err
	}
	op := fmt.Sprintf("replace default route via %s dev %s", gw, dev)
	l, err := f.link(op, ns, dev)
	if err != nil {
		return err
	}
	if !l.Up {
		return fmt.Errorf("%s in %s: network is down", op, nsLabel(ns))
	}
	reachable := slices.ContainsFunc(l.Addrs, func(p netip.Prefix) bool {
		return p.Masked().Contains(gw) && p.Addr() != gw
	})
	if !reachable {
		return fmt.Errorf("%s in %s: nexthop has invalid gateway", op, nsLabel(ns))
	}
	r := &fakeRoute{dev: dev, gw: gw}
	if n := f.ns[ns]; n.route == nil || *n.route != *r {
		n.route = r
		f.record("SetDefaultRoute", ns, dev, gw)
	}
	return nil
}

// The sysctls the model knows; other keys are refused as the kernel
// refuses a path that does not exist. The vs ones are those lb's IPVS
// plane sets, so one FakeKernel can take every sysctl of a node's tests.
var (
	fakeSysctlGlobals = []string{"net/ipv4/ip_forward", "net/ipv4/vs/conn_reuse_mode", "net/ipv4/vs/conntrack",
		"net/ipv4/vs/expire_nodest_conn", "net/ipv4/vs/expire_quiescent_template",
		"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables", "net/bridge/bridge-nf-call-arptables"}
	// fakeSysctlLeaves are per device: net/ipv4/conf/DEV/LEAF.
	fakeSysctlLeaves = []string{"accept_local", "forwarding", "proxy_arp", "route_localnet", "rp_filter", "send_redirects"}
)

// SetSysctl implements [Stack]. It knows the keys above, per device
// net/ipv4/conf/{all,default,DEV}/LEAF for an existing DEV, and wants an
// integer, as those files do.
func (f *FakeKernel) SetSysctl(ns, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetSysctl"); err != nil {
		return err
	}
	if err := checkSysctlKey(key); err != nil {
		return err
	}
	op := fmt.Sprintf("set sysctl %s=%s", key, value)
	n, err := f.netns(op, ns)
	if err != nil {
		return err
	}
	if !f.knownSysctl(n, key) {
		return errNotFound("%s in %s: no such file or directory", op, nsLabel(ns))
	}
	v, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("%s in %s: invalid argument", op, nsLabel(ns))
	}
	if n.sysctl[key] != strconv.Itoa(v) {
		n.sysctl[key] = strconv.Itoa(v)
		f.record("SetSysctl", ns, key, v)
	}
	return nil
}

func (f *FakeKernel) knownSysctl(n *fakeNS, key string) bool {
	if slices.Contains(fakeSysctlGlobals, key) {
		return true
	}
	dev, leaf, ok := strings.Cut(strings.TrimPrefix(key, "net/ipv4/conf/"), "/")
	if !ok || !strings.HasPrefix(key, "net/ipv4/conf/") || !slices.Contains(fakeSysctlLeaves, leaf) {
		return false
	}
	return dev == "all" || dev == "default" || n.links[dev] != nil
}

// forgetLink drops what the namespace ns held for the device name, which
// has gone: its routes and its net/ipv4/conf/NAME settings (a new device
// of that name starts from the defaults).
func (f *FakeKernel) forgetLink(ns, name string) {
	n, ok := f.ns[ns]
	if !ok {
		return
	}
	f.flushRoutes(ns, name)
	prefix := "net/ipv4/conf/" + name + "/"
	maps.DeleteFunc(n.sysctl, func(k, _ string) bool { return strings.HasPrefix(k, prefix) })
}

// flushRoutes removes the routes through dev in ns.
func (f *FakeKernel) flushRoutes(ns, dev string) {
	if n := f.ns[ns]; n != nil && n.route != nil && n.route.dev == dev {
		n.route = nil
	}
}

// dumpStack writes n's default route and sysctls in Dump's format.
func dumpStack(b *strings.Builder, n *fakeNS) {
	if r := n.route; r != nil {
		fmt.Fprintf(b, "  route default via %s dev %s\n", r.gw, r.dev)
	}
	for _, k := range slices.Sorted(maps.Keys(n.sysctl)) {
		fmt.Fprintf(b, "  sysctl %s=%s\n", k, n.sysctl[k])
	}
}
