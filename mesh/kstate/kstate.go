package kstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/overlay"
)

// Kernel is what a snapshot reads, per namespace path ("" = the node's
// own namespace). overlay's kernel gives the first three; [NewKernel]
// adds the rest.
type Kernel interface {
	// ListLinks is "ip -d addr".
	ListLinks(ns string) ([]overlay.Link, error)
	// ListARP is "ip neigh show dev DEV".
	ListARP(ns, dev string) ([]overlay.ARPEntry, error)
	// ListFDB is "bridge fdb show dev DEV self", the entries with a
	// destination.
	ListFDB(ns, dev string) ([]overlay.FDBEntry, error)
	// ListBridgeFDB is the MACs of the static entries of "bridge fdb show
	// dev DEV master".
	ListBridgeFDB(ns, dev string) ([]net.HardwareAddr, error)
	// Routes is "ip -4 route" (the main table); Dev is an ifindex as a
	// decimal string, which Read names.
	Routes(ns string) ([]api.KernelRoute, error)
	// NetNSIDs returns, for each path in others, the ID that namespace ns
	// gives it (what a veth's "link-netnsid" says); paths it gives no ID
	// are left out.
	NetNSIDs(ns string, others []string) (map[int]string, error)
	// IPTables is "iptables-save -c".
	IPTables(ctx context.Context, ns string) ([]byte, error)
	// IPVS is "ipvsadm -Ln"; lb.ErrNoIPVS on a kernel without IPVS.
	IPVS(ns string) ([]lb.IPVSService, error)
	// NFT is "nft list table inet meshd", "" when there is no such
	// table; an error wrapping exec.ErrNotFound when nft is missing.
	NFT(ctx context.Context, ns string) (string, error)
	// Sockets is "ss -ltun": TCP listeners and unconnected UDP sockets,
	// sorted, with their inodes but no process.
	Sockets(ns string) ([]api.KernelSocket, error)
	// SocketOwners is the process part of "ss -p": the process holding
	// each inode of want (a socket's inode is the same seen from any
	// namespace), reading at most limit descriptors; cut says it
	// stopped short.
	SocketOwners(want map[uint32]bool, limit int) (owners map[uint32]Proc, cut bool, err error)
}

// Namespace is one namespace to read: its name as ns ls prints it and
// its file ("" for the node's own).
type Namespace struct {
	Name, Path string
}

// Read reads the namespaces given, in that order, at most
// api.MaxKernelNamespaces of them; a namespace that fails to read whole
// carries its errors. It fills Namespaces and Truncated only: the caller
// names the node.
func Read(ctx context.Context, k Kernel, nss []Namespace) api.KernelSnapshot {
	var snap api.KernelSnapshot
	if len(nss) > api.MaxKernelNamespaces {
		nss, snap.Truncated = nss[:api.MaxKernelNamespaces], true
	}
	paths := make([]string, 0, len(nss))
	names := map[string]string{}
	for _, ns := range nss {
		paths = append(paths, hostPath(ns.Path))
		names[hostPath(ns.Path)] = ns.Name
	}
	for _, ns := range nss {
		if ctx.Err() != nil {
			break
		}
		r := reader{k: k, ns: ns, out: api.NetnsState{Name: ns.Name, Path: ns.Path}}
		r.read(ctx, paths, names)
		snap.Namespaces = append(snap.Namespaces, r.out)
	}
	owners(k, snap.Namespaces)
	return snap
}

// owners names the process of every socket of nss, from one walk of the
// node's processes for all the namespaces.
func owners(k Kernel, nss []api.NetnsState) {
	want := map[uint32]bool{}
	for _, ns := range nss {
		for _, s := range ns.Sockets {
			want[s.Inode] = true
		}
	}
	if len(want) == 0 {
		return
	}
	procs, cut, err := k.SocketOwners(want, api.MaxKernelFDs)
	for i := range nss {
		ns := &nss[i]
		missing := false
		for j := range ns.Sockets {
			s := &ns.Sockets[j]
			p, ok := procs[s.Inode]
			s.PID, s.Command = p.PID, p.Command
			missing = missing || !ok
		}
		switch {
		case err != nil && len(ns.Sockets) > 0:
			ns.Errors = append(ns.Errors, fmt.Sprintf("socket owners: %v", err))
		case cut && missing:
			ns.Truncated = append(ns.Truncated, "socket owners")
		}
	}
}

// hostPath is the file that names the node's own namespace for NetNSIDs:
// the namespace meshd's first thread is in.
func hostPath(p string) string {
	if p == "" {
		return "/proc/self/ns/net"
	}
	return p
}

type reader struct {
	k   Kernel
	ns  Namespace
	out api.NetnsState
}

func (r *reader) fail(what string, err error) {
	r.out.Errors = append(r.out.Errors, fmt.Sprintf("%s: %v", what, err))
}

func (r *reader) cut(what string) { r.out.Truncated = append(r.out.Truncated, what) }

func (r *reader) read(ctx context.Context, paths []string, names map[string]string) {
	links, err := r.k.ListLinks(r.ns.Path)
	if err != nil {
		r.fail("links", err)
	}
	if len(links) > api.MaxKernelEntries {
		links = links[:api.MaxKernelEntries]
		r.cut("links")
	}
	r.links(links, paths, names)
	r.routes(links)
	for _, l := range links {
		r.neighbours(l)
	}
	r.iptables(ctx)
	r.ipvs()
	r.nft(ctx)
	r.sockets()
}

func (r *reader) sockets() {
	socks, err := r.k.Sockets(r.ns.Path)
	if err != nil {
		r.fail("sockets", err)
		return
	}
	if len(socks) > api.MaxKernelEntries {
		socks = socks[:api.MaxKernelEntries]
		r.cut("sockets")
	}
	r.out.Sockets = append([]api.KernelSocket{}, socks...)
}

func (r *reader) links(links []overlay.Link, paths []string, names map[string]string) {
	var ids map[int]string // asked only when a veth's peer is elsewhere
	for _, l := range links {
		kl := api.KernelLink{Index: l.Index, Name: l.Name, Kind: l.Kind, Master: l.Master, MAC: macString(l.MAC),
			MTU: l.MTU, Up: l.Up, State: l.OperState, Addrs: l.Addrs, VNI: l.VNI, Port: l.Port, Local: l.Src}
		if l.Kind == "veth" {
			kl.PeerIndex = l.PeerIndex
			if l.PeerNetNSID < 0 {
				kl.PeerNetns = r.ns.Name
			} else {
				if ids == nil {
					var err error
					others := slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == hostPath(r.ns.Path) })
					if ids, err = r.k.NetNSIDs(r.ns.Path, others); err != nil {
						r.fail("netns ids", err)
						ids = map[int]string{}
					}
				}
				kl.PeerNetns = names[ids[l.PeerNetNSID]]
			}
		}
		if kl.Addrs == nil {
			kl.Addrs = []netip.Prefix{}
		}
		r.out.Links = append(r.out.Links, kl)
	}
}

func (r *reader) routes(links []overlay.Link) {
	routes, err := r.k.Routes(r.ns.Path)
	if err != nil {
		r.fail("routes", err)
	}
	if len(routes) > api.MaxKernelEntries {
		routes = routes[:api.MaxKernelEntries]
		r.cut("routes")
	}
	byIndex := map[string]string{}
	for _, l := range links {
		byIndex[fmt.Sprint(l.Index)] = l.Name
	}
	for i := range routes {
		if name, ok := byIndex[routes[i].Dev]; ok {
			routes[i].Dev = name
		}
	}
	r.out.Routes = append([]api.KernelRoute{}, routes...)
}

// neighbours reads a link's neighbours, and its forwarding entries when
// it is a VXLAN device (a bridge's own learnt entries say nothing the
// neighbours do not).
func (r *reader) neighbours(l overlay.Link) {
	if l.Kind == "device" && l.Name == "lo" {
		return
	}
	arp, err := r.k.ListARP(r.ns.Path, l.Name)
	if err != nil {
		r.fail("neighbours on "+l.Name, err)
	}
	for _, a := range arp {
		if len(r.out.Neighbours) == api.MaxKernelEntries {
			r.cut("neighbours")
			break
		}
		state := a.State
		if state == "" && a.Permanent {
			state = "PERMANENT"
		}
		r.out.Neighbours = append(r.out.Neighbours, api.KernelNeigh{IP: a.IP, MAC: macString(a.MAC), Dev: l.Name, State: state})
	}
	if l.Kind != "vxlan" {
		return
	}
	fdb, err := r.k.ListFDB(r.ns.Path, l.Name)
	if err != nil {
		r.fail("fdb on "+l.Name, err)
	}
	for _, e := range fdb {
		if !r.addFDB(api.KernelFDB{MAC: macString(e.MAC), Dev: l.Name, Dst: e.Dst, Permanent: e.Permanent}) {
			return
		}
	}
	if l.Master == "" {
		return
	}
	macs, err := r.k.ListBridgeFDB(r.ns.Path, l.Name)
	if err != nil {
		r.fail("fdb of "+l.Master+" on "+l.Name, err)
	}
	for _, mac := range macs {
		if !r.addFDB(api.KernelFDB{MAC: macString(mac), Dev: l.Name, Master: l.Master}) {
			return
		}
	}
}

// addFDB adds e to the snapshot, or says the snapshot is cut there and
// returns false once it holds api.MaxKernelEntries entries.
func (r *reader) addFDB(e api.KernelFDB) bool {
	if len(r.out.FDB) == api.MaxKernelEntries {
		r.cut("fdb")
		return false
	}
	r.out.FDB = append(r.out.FDB, e)
	return true
}

func (r *reader) iptables(ctx context.Context) {
	r.out.IPTables = map[string]string{}
	text, err := r.k.IPTables(ctx, r.ns.Path)
	if err != nil {
		r.fail("iptables", err)
		return
	}
	for table, body := range SplitTables(text) {
		if len(body) > api.MaxKernelTable {
			body = wholeLines(body, api.MaxKernelTable)
			r.cut("iptables " + table)
		}
		r.out.IPTables[table] = string(body)
	}
}

// nft reads meshd's nftables table in the load-balancer sandboxes, the
// only namespaces that hold one (ingress_sbox, lb_<netid>): an nft run in
// each task would make every snapshot slower for nothing. A node without
// nft holds no table of ours: that is no error.
func (r *reader) nft(ctx context.Context) {
	if r.ns.Name != "ingress_sbox" && !strings.HasPrefix(r.ns.Name, "lb_") {
		return
	}
	text, err := r.k.NFT(ctx, r.ns.Path)
	if errors.Is(err, exec.ErrNotFound) {
		return
	}
	if err != nil {
		r.fail("nft", err)
		return
	}
	if len(text) > api.MaxKernelTable {
		text = string(wholeLines([]byte(text), api.MaxKernelTable))
		r.cut("nft")
	}
	r.out.NFT = text
}

// wholeLines is b cut to at most n bytes, at the end of a line, so that
// a cut text still parses line by line.
func wholeLines(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:bytes.LastIndexByte(b[:n], '\n')+1]
}

func (r *reader) ipvs() {
	svcs, err := r.k.IPVS(r.ns.Path)
	if errors.Is(err, lb.ErrNoIPVS) {
		r.out.IPVS = api.IPVSNone
		return
	}
	r.out.IPVS = api.IPVSRead
	if err != nil {
		r.fail("ipvs", err)
		return
	}
	for _, s := range svcs {
		ks := api.KernelIPVS{FWMark: s.FWMark, Scheduler: s.Scheduler, Destinations: []api.KernelIPVSDest{}}
		for _, d := range s.Destinations {
			ks.Destinations = append(ks.Destinations, api.KernelIPVSDest{Addr: d.Addr, Port: d.Port, Weight: d.Weight,
				ActiveConn: d.ActiveConn, InActConn: d.InActConn})
		}
		r.out.Services = append(r.out.Services, ks)
	}
}

// SplitTables cuts iptables-save output into its tables: each from its
// "*table" line to its "COMMIT", comments left out.
func SplitTables(text []byte) map[string][]byte {
	out := map[string][]byte{}
	var table string
	for line := range bytes.Lines(text) {
		l := strings.TrimSpace(string(line))
		switch {
		case strings.HasPrefix(l, "#") || l == "":
			continue
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		}
		if table != "" {
			out[table] = append(out[table], line...)
		}
		if l == "COMMIT" {
			table = ""
		}
	}
	return out
}

func macString(mac []byte) string {
	if len(mac) == 0 {
		return ""
	}
	var b strings.Builder
	for i, c := range mac {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", c)
	}
	return b.String()
}

// Netns lists a node's namespaces to read: its own first, as
// api.HostNamespace, then the files in dir, by name.
func Netns(dir string, names []string) []Namespace {
	out := []Namespace{{Name: api.HostNamespace}}
	for _, n := range names {
		out = append(out, Namespace{Name: n, Path: filepath.Join(dir, n)})
	}
	return out
}
