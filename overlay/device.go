package overlay

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshd/meshd/ipam"
)

// The desired devices of a network and an endpoint; pure.

func (o *Overlay) bridgeSpec(n Network) BridgeSpec {
	return BridgeSpec{
		NS:   o.NamespacePath(n.ID),
		Name: bridgeName,
		MTU:  o.mtu,
		Addr: netip.PrefixFrom(n.Gateway, n.Subnet.Bits()),
	}
}

func (o *Overlay) vxlanSpec(n Network) VXLANSpec {
	return VXLANSpec{
		HostNS: o.hostNS,
		NS:     o.NamespacePath(n.ID),
		Name:   vxlanName,
		VNI:    n.VNI,
		Port:   o.port,
		Src:    o.underlay,
		MTU:    o.mtu,
		Master: bridgeName,
	}
}

func (o *Overlay) vethSpec(n Network, ep Endpoint) VethSpec {
	mac := ep.MAC
	if mac == nil {
		mac = ipam.MAC(ep.IP)
	}
	return VethSpec{
		NS:       o.NamespacePath(n.ID),
		Name:     vethName(ep.ID),
		Master:   bridgeName,
		MTU:      o.mtu,
		PeerNS:   ep.Sandbox,
		PeerName: ep.IfName,
		PeerMAC:  mac,
		PeerAddr: netip.PrefixFrom(ep.IP, n.Subnet.Bits()),
	}
}

// EnsureNetwork builds network n's namespace, bridge and VXLAN device, or
// repairs them: a missing piece is added, a drifted attribute (MTU,
// master, address, state) is set again, and a device that cannot be
// changed in place (another VNI or port) is recreated, with the reason
// logged. Endpoints and peers are not touched; the caller ensures them
// after this. Nothing is changed when everything is as it should be.
func (o *Overlay) EnsureNetwork(n Network) error {
	if err := n.validate(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ns := o.NamespacePath(n.ID)
	if err := o.ensureNS(ns); err != nil {
		return fmt.Errorf("overlay: network %s: %w", n.ID, err)
	}
	if err := o.removeStrayVXLANs(ns); err != nil {
		return fmt.Errorf("overlay: network %s: %w", n.ID, err)
	}
	if err := o.bridgeHooksOff(ns); err != nil {
		return fmt.Errorf("overlay: network %s: %w", n.ID, err)
	}
	br, vx := o.bridgeSpec(n), o.vxlanSpec(n)
	steps := []struct {
		name     string
		incompat func(Link) string
		drift    func(Link) string
		ensure   func() error
	}{
		{br.Name, bridgeIncompat, func(l Link) string { return bridgeDrift(br, l) },
			func() error { return o.k.EnsureBridge(br) }},
		{vx.Name, func(l Link) string { return vxlanIncompat(vx, l) }, func(l Link) string { return vxlanDrift(vx, l) },
			func() error { return o.k.EnsureVXLAN(vx) }},
	}
	for _, s := range steps {
		// List again for each device: recreating br0 unenslaves vxlan0.
		links, err := o.k.ListLinks(ns)
		if err != nil {
			return fmt.Errorf("overlay: network %s: %w", n.ID, err)
		}
		if err := o.reconcileLink(ns, s.name, find(links, s.name), s.incompat, s.drift, s.ensure); err != nil {
			return fmt.Errorf("overlay: network %s: %w", n.ID, err)
		}
	}
	o.nets[n.ID] = n
	return nil
}

// bridgeNetfilterSysctls make br_netfilter pass a bridge's frames through
// the namespace's iptables, ip6tables and arptables hooks. The host
// wants that for its bridges (the gwbridge's isolation rules match
// bridged frames); an overlay namespace holds no rules, so there the
// hooks only cost every frame crossing br0 a pass through empty chains
// and a conntrack lookup when conntrack is loaded. They are per namespace
// since Linux 5.3; before, the files exist only in the host's, and
// without br_netfilter nowhere: there is nothing to turn off then.
var bridgeNetfilterSysctls = []string{
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables", "net/bridge/bridge-nf-call-arptables",
}

// bridgeHooksOff turns the bridge's netfilter hooks off in overlay
// namespace ns, where that is a setting of its own.
func (o *Overlay) bridgeHooksOff(ns string) error {
	for _, key := range bridgeNetfilterSysctls {
		if err := o.k.SetSysctl(ns, key, "0"); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// removeStrayVXLANs removes VXLAN devices other than vxlan0 from an
// overlay namespace: a crash between the move and the rename leaves one
// there, holding the VNI.
func (o *Overlay) removeStrayVXLANs(ns string) error {
	links, err := o.k.ListLinks(ns)
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Kind != "vxlan" || l.Name == vxlanName {
			continue
		}
		o.log.Info("removing stray vxlan device", "netns", ns, "link", l.Name, "vni", l.VNI)
		if err := o.k.RemoveLink(ns, l.Name); err != nil {
			return err
		}
	}
	return nil
}

// reconcileLink brings one device to its spec: nothing if it matches,
// ensure if it is absent or drifted, remove first if it is incompatible.
func (o *Overlay) reconcileLink(ns, name string, have *Link, incompat, drift func(Link) string, ensure func() error) error {
	if have != nil {
		if why := incompat(*have); why != "" {
			o.log.Info("recreating link", "netns", ns, "link", name, "reason", why)
			if err := o.k.RemoveLink(ns, name); err != nil {
				return err
			}
		} else if why := drift(*have); why != "" {
			o.log.Info("repairing link", "netns", ns, "link", name, "reason", why)
		} else {
			return nil
		}
	}
	return ensure()
}

func (o *Overlay) ensureNS(ns string) error {
	names, err := o.k.ListNS(filepath.Dir(ns))
	if err != nil {
		return err
	}
	if slices.Contains(names, filepath.Base(ns)) {
		return nil
	}
	return o.k.EnsureNS(ns)
}

func (o *Overlay) nsExists(ns string) (bool, error) {
	names, err := o.k.ListNS(filepath.Dir(ns))
	return slices.Contains(names, filepath.Base(ns)), err
}

// RemoveNetwork removes network netID's namespace and everything in it:
// the VXLAN device first (so its VNI is free at once, not when the kernel
// gets round to freeing the namespace), then the other devices (so the
// sandbox ends of the veths go too), then the namespace. Absent is fine.
func (o *Overlay) RemoveNetwork(netID string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.nets, netID)
	delete(o.local, netID)
	if err := o.removeNamespace(o.NamespacePath(netID)); err != nil {
		return fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	return nil
}

func (o *Overlay) removeNamespace(ns string) error {
	ok, err := o.nsExists(ns)
	if err != nil || !ok {
		return err
	}
	links, err := o.k.ListLinks(ns)
	if err != nil {
		return err
	}
	// vxlan devices first, then the rest; lo cannot go.
	slices.SortStableFunc(links, func(a, b Link) int {
		return boolRank(a.Kind != "vxlan") - boolRank(b.Kind != "vxlan")
	})
	var errs []error
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		if err := o.k.RemoveLink(ns, l.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := o.k.RemoveNS(ns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// EnsureEndpoint connects a local endpoint to network netID (which
// EnsureNetwork must have set up): a veth pair whose bridge-side end
// (veth + 7 hex digits) is a port of br0 and whose other end is created
// directly in ep.Sandbox as ep.IfName with ep's MAC and address, both up
// with the overlay MTU. A pair that is there but wrong is repaired or, if
// its ends do not belong together, recreated.
func (o *Overlay) EnsureEndpoint(netID string, ep Endpoint) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.nets[netID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownNetwork, netID)
	}
	if err := ep.validate(n); err != nil {
		return err
	}
	spec := o.vethSpec(n, ep)
	if o.local[netID] == nil {
		o.local[netID] = map[string]string{}
	}
	if mac := spec.PeerMAC.String(); o.local[netID][ep.ID] != mac {
		// A remote endpoint that had this MAC (its address, freed and
		// given again) may still have br0's entry sending it to vxlan0.
		err := o.k.DelBridgeFDB(spec.NS, vxlanName, spec.PeerMAC)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("overlay: network %s: endpoint %s: %w", netID, ep.ID, err)
		}
		o.local[netID][ep.ID] = mac
	}
	if err := o.ensureVeth(spec); err != nil {
		return fmt.Errorf("overlay: network %s: endpoint %s: %w", netID, ep.ID, err)
	}
	return nil
}

func (o *Overlay) ensureVeth(spec VethSpec) error {
	ends, err := o.k.ListLinks(spec.NS)
	if err != nil {
		return err
	}
	peers, err := o.k.ListLinks(spec.PeerNS)
	if err != nil {
		return err
	}
	end, peer := find(ends, spec.Name), find(peers, spec.PeerName)
	if why := vethIncompat(spec, end, peer); why != "" {
		o.log.Info("recreating veth", "netns", spec.NS, "link", spec.Name, "peer", spec.PeerName, "reason", why)
		if end != nil {
			if err := o.k.RemoveLink(spec.NS, spec.Name); err != nil {
				return err
			}
		}
		if peer != nil {
			if err := o.k.RemoveLink(spec.PeerNS, spec.PeerName); err != nil {
				return err
			}
		}
	} else if end != nil {
		why := vethDrift(spec, *end, *peer)
		if why == "" {
			return nil
		}
		o.log.Info("repairing veth", "netns", spec.NS, "link", spec.Name, "reason", why)
	}
	return o.k.EnsureVeth(spec)
}

// RemoveEndpoint removes endpoint epID's veth pair from network netID; the
// sandbox end goes with it. Absent (endpoint, network or namespace) is
// fine.
func (o *Overlay) RemoveEndpoint(netID, epID string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.local[netID], epID)
	err := o.k.RemoveLink(o.NamespacePath(netID), vethName(epID))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("overlay: network %s: endpoint %s: %w", netID, epID, err)
	}
	return nil
}

// Sweep removes what an earlier run left behind: every overlay namespace
// (1-*) under NSDir whose network is not in keep, with its devices, and
// every VXLAN device in the host namespace whose name starts with "vx-"
// (created but never moved: a crash in between). Without it, creating the
// VXLAN device of a network again fails with "file exists", as Swarm's
// does. Call it once at start, before EnsureNetwork. Other files in NSDir
// (sandboxes) are left alone. It goes on after an error and returns them
// all.
func (o *Overlay) Sweep(keep []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := make(map[string]bool, len(keep))
	for _, id := range keep {
		kept[namespaceName(id)] = true
	}
	var errs []error
	names, err := o.k.ListNS(o.nsDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("overlay: sweep: %w", err))
	}
	for _, name := range names {
		if !strings.HasPrefix(name, nsPrefix) || kept[name] {
			continue
		}
		ns := filepath.Join(o.nsDir, name)
		o.log.Info("removing stale overlay namespace", "netns", ns)
		if err := o.removeNamespace(ns); err != nil {
			errs = append(errs, fmt.Errorf("overlay: sweep: %w", err))
		}
	}
	for id := range o.nets {
		if !kept[namespaceName(id)] {
			delete(o.nets, id)
		}
	}
	links, err := o.k.ListLinks(o.hostNS)
	if err != nil {
		errs = append(errs, fmt.Errorf("overlay: sweep: %w", err))
	}
	for _, l := range links {
		if l.Kind != "vxlan" || !strings.HasPrefix(l.Name, vxlanTempPrefix) {
			continue
		}
		o.log.Info("removing stray vxlan device", "link", l.Name, "vni", l.VNI)
		if err := o.k.RemoveLink(o.hostNS, l.Name); err != nil {
			errs = append(errs, fmt.Errorf("overlay: sweep: %w", err))
		}
	}
	return errors.Join(errs...)
}

// find returns the link called name, or nil.
func find(links []Link, name string) *Link {
	for i := range links {
		if links[i].Name == name {
			return &links[i]
		}
	}
	return nil
}
