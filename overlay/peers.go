package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/meshd/meshd/ipam"
)

// SetPeers makes peers the remote endpoints of network netID: for each, a
// permanent neighbour entry (IP → MAC) and a permanent FDB entry (MAC →
// VTEP) on vxlan0, and a static entry of br0 sending the MAC to vxlan0.
// Without that last one br0, which learns nothing on vxlan0, would flood
// every frame for a remote endpoint to all its ports: a copy to each
// local task, which drops it (and whose tcpdump shows it). Entries of
// peers no longer listed are removed, and entries that differ (another
// MAC or VTEP, not permanent, changed by hand) are replaced; entries
// that are right are not touched, so an unchanged list makes no kernel
// call beyond three listings.
//
// Peers whose VTEP is this node's own address are local endpoints, reached
// through the bridge, and are skipped. An invalid peer is reported in the
// returned error and treated as absent; the others are still applied.
//
// Order, as flannel: a peer is added ARP then FDB, and if its FDB entry
// cannot be set its ARP entry is removed again, so a peer is never
// half-present; a peer is removed FDB then ARP. One failing peer does not
// stop the others; all errors are returned.
func (o *Overlay) SetPeers(netID string, peers []Peer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.nets[netID]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownNetwork, netID)
	}
	ns := o.NamespacePath(netID)
	want, errs := desiredPeers(peers, o.underlay)
	arp, err := o.k.ListARP(ns, vxlanName)
	if err != nil {
		return fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	fdb, err := o.k.ListFDB(ns, vxlanName)
	if err != nil {
		return fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	br, err := o.k.ListBridgeFDB(ns, vxlanName)
	if err != nil {
		return fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	plan := diffPeers(want, arp, fdb, br, o.localMACs(netID))
	for _, err := range o.applyPeers(ns, plan) {
		errs = append(errs, fmt.Errorf("overlay: network %s: %w", netID, err))
	}
	return errors.Join(errs...)
}

// desiredPeers checks peers, fills in default MACs, drops local ones and
// duplicates, and sorts them by IP. A peer whose IP or MAC is already
// taken by an earlier one (in IP order) is an error.
func desiredPeers(peers []Peer, self netip.Addr) ([]Peer, []error) {
	var errs []error
	var want []Peer
	for _, p := range peers {
		p.IP, p.VTEP = p.IP.Unmap(), p.VTEP.Unmap()
		if p.MAC == nil {
			p.MAC = ipam.MAC(p.IP)
		}
		switch {
		case !p.IP.IsValid() || !p.VTEP.IsValid():
			errs = append(errs, fmt.Errorf("overlay: peer %v at %v: invalid address", p.IP, p.VTEP))
			continue
		case len(p.MAC) != 6:
			errs = append(errs, fmt.Errorf("overlay: peer %v: MAC %q: want 6 bytes", p.IP, p.MAC))
			continue
		case p.VTEP == self:
			continue
		}
		want = append(want, p)
	}
	slices.SortStableFunc(want, func(a, b Peer) int { return a.IP.Compare(b.IP) })
	var out []Peer
	ips, macs := map[netip.Addr]Peer{}, map[string]Peer{}
	for _, p := range want {
		if q, ok := ips[p.IP]; ok {
			if !samePeer(p, q) {
				errs = append(errs, fmt.Errorf("overlay: peer %v listed twice: %s at %v and %s at %v", p.IP, q.MAC, q.VTEP, p.MAC, p.VTEP))
			}
			continue
		}
		if q, ok := macs[p.MAC.String()]; ok {
			errs = append(errs, fmt.Errorf("overlay: peer %v: MAC %s already used by %v", p.IP, p.MAC, q.IP))
			continue
		}
		ips[p.IP], macs[p.MAC.String()] = p, p
		out = append(out, p)
	}
	return out, errs
}

func samePeer(a, b Peer) bool {
	return a.IP == b.IP && a.VTEP == b.VTEP && a.MAC.String() == b.MAC.String()
}

// peerPlan is what SetPeers changes: removals first, then additions.
type peerPlan struct {
	delBr  []net.HardwareAddr
	delFDB []FDBEntry
	delARP []ARPEntry
	set    []peerSet
}

// peerSet is one peer to add or repair, with the entries it lacks.
type peerSet struct {
	Peer
	arp, fdb, br bool
}

// localMACs returns the MACs of network netID's local endpoints, as
// EnsureEndpoint was given them.
func (o *Overlay) localMACs(netID string) map[string]bool {
	macs := map[string]bool{}
	for _, mac := range o.local[netID] {
		macs[mac] = true
	}
	return macs
}

// diffPeers compares the desired peers (from desiredPeers) with the
// entries vxlan0 has: arp and fdb its own, br the static entries of br0
// for it. A MAC in local belongs to a local endpoint: br0 must not send
// it to vxlan0 even while a stale peer still lists it. Pure.
func diffPeers(want []Peer, arp []ARPEntry, fdb []FDBEntry, br []net.HardwareAddr, local map[string]bool) peerPlan {
	byIP := make(map[netip.Addr]Peer, len(want))
	byMAC := make(map[string]Peer, len(want))
	for _, p := range want {
		byIP[p.IP], byMAC[p.MAC.String()] = p, p
	}
	var plan peerPlan
	arpOK := map[netip.Addr]bool{}
	for _, e := range arp {
		p, ok := byIP[e.IP]
		switch {
		case !ok:
			plan.delARP = append(plan.delARP, e)
		case e.Permanent && e.MAC.String() == p.MAC.String():
			arpOK[e.IP] = true
		}
	}
	remotes := map[string]int{}
	for _, e := range fdb {
		remotes[e.MAC.String()]++
	}
	fdbOK := map[string]bool{}
	for _, e := range fdb {
		mac := e.MAC.String()
		p, ok := byMAC[mac]
		switch {
		case !ok:
			plan.delFDB = append(plan.delFDB, e)
		case e.Dst == p.VTEP && e.Permanent:
			fdbOK[mac] = true
		case remotes[mac] > 1:
			// "bridge fdb append" by hand: replace would change only
			// the first remote, so drop the extra ones.
			plan.delFDB = append(plan.delFDB, e)
		}
	}
	brOK := map[string]bool{}
	for _, mac := range br {
		if _, ok := byMAC[mac.String()]; ok && !local[mac.String()] {
			brOK[mac.String()] = true
			continue
		}
		plan.delBr = append(plan.delBr, mac)
	}
	for _, p := range want {
		mac := p.MAC.String()
		s := peerSet{Peer: p, arp: !arpOK[p.IP], fdb: !fdbOK[mac], br: !brOK[mac] && !local[mac]}
		if s.arp || s.fdb || s.br {
			plan.set = append(plan.set, s)
		}
	}
	slices.SortFunc(plan.delBr, compareMAC)
	slices.SortFunc(plan.delFDB, func(a, b FDBEntry) int { return compareMAC(a.MAC, b.MAC) })
	slices.SortFunc(plan.delARP, func(a, b ARPEntry) int { return a.IP.Compare(b.IP) })
	return plan
}

func compareMAC(a, b net.HardwareAddr) int {
	return slices.Compare(a, b)
}

// applyPeers carries out plan on vxlan0 in ns and returns what failed.
func (o *Overlay) applyPeers(ns string, plan peerPlan) []error {
	var errs []error
	for _, mac := range plan.delBr {
		if err := o.k.DelBridgeFDB(ns, vxlanName, mac); err != nil && !isNotFound(err) {
			errs = append(errs, err)
			continue
		}
		o.log.Debug("removed bridge fdb entry", "netns", ns, "mac", mac)
	}
	for _, e := range plan.delFDB {
		if err := o.k.DelFDB(ns, vxlanName, e.MAC, e.Dst); err != nil && !isNotFound(err) {
			errs = append(errs, err)
			continue
		}
		o.log.Debug("removed fdb entry", "netns", ns, "mac", e.MAC, "dst", e.Dst)
	}
	for _, e := range plan.delARP {
		if err := o.k.DelARP(ns, vxlanName, e.IP); err != nil && !isNotFound(err) {
			errs = append(errs, err)
			continue
		}
		o.log.Debug("removed neighbour", "netns", ns, "peer", e.IP, "mac", e.MAC)
	}
	for _, s := range plan.set {
		if err := o.setPeer(ns, s); err != nil {
			errs = append(errs, err)
			continue
		}
		o.log.Debug("set peer", "netns", ns, "peer", s.IP, "mac", s.MAC, "vtep", s.VTEP)
	}
	return errs
}

// setPeer adds the entries s lacks, ARP then FDB, then br0's entry. If
// the FDB entry fails, the ARP entry goes, whether it was just set or
// already there. Without br0's entry the peer is still reached, by
// flooding, so its failure takes nothing back.
func (o *Overlay) setPeer(ns string, s peerSet) error {
	if s.arp {
		if err := o.k.SetARP(ns, vxlanName, s.IP, s.MAC); err != nil {
			return err
		}
	}
	if s.fdb {
		if err := o.setPeerFDB(ns, s); err != nil {
			return err
		}
	}
	if s.br {
		return o.k.SetBridgeFDB(ns, vxlanName, s.MAC)
	}
	return nil
}

func (o *Overlay) setPeerFDB(ns string, s peerSet) error {
	err := o.k.SetFDB(ns, vxlanName, s.MAC, s.VTEP)
	if err == nil {
		return nil
	}
	if rerr := o.k.DelARP(ns, vxlanName, s.IP); rerr != nil && !isNotFound(rerr) {
		return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
	}
	return err
}

// PeerDiff is one entry of a vxlan0 that differs from what [Overlay.SetPeers]
// would leave there.
type PeerDiff struct {
	Kind  string // "fdb", "neigh" or "link" (br0 or vxlan0 itself)
	State string // "missing", "extra" or "differs"
	// Entry is the entry as bridge fdb and ip neigh print it: for fdb
	// "MAC dst VTEP" (vxlan0's) or "MAC master br0 static" (br0's), for
	// neigh "IP lladdr MAC"; the wanted one when it is missing or
	// differs, the kernel's when it is extra.
	Entry string
	// Have is, when State is "differs", the kernel's entry for the same
	// MAC (fdb) or IP (neigh), with "not permanent" when it is not.
	Have string
}

// CheckPeers is SetPeers' dry run: it compares the entries on network
// netID's vxlan0 with those SetPeers(netID, peers) would leave, by the
// same rules, and returns what differs instead of changing it. It changes
// nothing; invalid peers are left out, as SetPeers leaves them out. When
// br0 or vxlan0 is missing it says so, and nothing of the entries, which
// went with vxlan0.
func (o *Overlay) CheckPeers(netID string, peers []Peer) ([]PeerDiff, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ns := o.NamespacePath(netID)
	links, err := o.k.ListLinks(ns)
	if err != nil {
		return nil, fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	var missing []PeerDiff
	for _, name := range []string{bridgeName, vxlanName} {
		if !slices.ContainsFunc(links, func(l Link) bool { return l.Name == name }) {
			missing = append(missing, PeerDiff{Kind: "link", State: "missing", Entry: name})
		}
	}
	if len(missing) > 0 {
		return missing, nil
	}
	want, _ := desiredPeers(peers, o.underlay)
	arp, err := o.k.ListARP(ns, vxlanName)
	if err != nil {
		return nil, fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	fdb, err := o.k.ListFDB(ns, vxlanName)
	if err != nil {
		return nil, fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	br, err := o.k.ListBridgeFDB(ns, vxlanName)
	if err != nil {
		return nil, fmt.Errorf("overlay: network %s: %w", netID, err)
	}
	return peerDiffs(diffPeers(want, arp, fdb, br, o.localMACs(netID)), arp, fdb), nil
}

// peerDiffs describes plan, which diffPeers made from arp and fdb: FDB
// entries first, then neighbours, each in the plan's order.
func peerDiffs(plan peerPlan, arp []ARPEntry, fdb []FDBEntry) []PeerDiff {
	var fdbs, neighs []PeerDiff
	for _, mac := range plan.delBr {
		fdbs = append(fdbs, PeerDiff{Kind: "fdb", State: "extra", Entry: bridgeFDBString(mac)})
	}
	for _, e := range plan.delFDB {
		fdbs = append(fdbs, PeerDiff{Kind: "fdb", State: "extra", Entry: fdbString(e.MAC, e.Dst, e.Permanent)})
	}
	for _, e := range plan.delARP {
		neighs = append(neighs, PeerDiff{Kind: "neigh", State: "extra", Entry: neighString(e.IP, e.MAC, e.Permanent)})
	}
	for _, s := range plan.set {
		if s.fdb {
			d := PeerDiff{Kind: "fdb", State: "missing", Entry: fdbString(s.MAC, s.VTEP, true)}
			if i := slices.IndexFunc(fdb, func(e FDBEntry) bool { return slices.Equal(e.MAC, s.MAC) }); i >= 0 {
				d.State, d.Have = "differs", fdbString(fdb[i].MAC, fdb[i].Dst, fdb[i].Permanent)
			}
			fdbs = append(fdbs, d)
		}
		if s.br {
			fdbs = append(fdbs, PeerDiff{Kind: "fdb", State: "missing", Entry: bridgeFDBString(s.MAC)})
		}
		if s.arp {
			d := PeerDiff{Kind: "neigh", State: "missing", Entry: neighString(s.IP, s.MAC, true)}
			if i := slices.IndexFunc(arp, func(e ARPEntry) bool { return e.IP == s.IP }); i >= 0 {
				d.State, d.Have = "differs", neighString(arp[i].IP, arp[i].MAC, arp[i].Permanent)
			}
			neighs = append(neighs, d)
		}
	}
	return append(fdbs, neighs...)
}

func fdbString(mac net.HardwareAddr, dst netip.Addr, permanent bool) string {
	return fmt.Sprintf("%s dst %s%s", mac, dst, notPermanent(permanent))
}

func bridgeFDBString(mac net.HardwareAddr) string {
	return fmt.Sprintf("%s master %s static", mac, bridgeName)
}

func neighString(ip netip.Addr, mac net.HardwareAddr, permanent bool) string {
	return fmt.Sprintf("%s lladdr %s%s", ip, mac, notPermanent(permanent))
}

func notPermanent(permanent bool) string {
	if permanent {
		return ""
	}
	return " not permanent"
}
