package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The lab drives the kernel through iproute2 ("ip -n NS …", a declared
// dependency) rather than netlink, so that meshctl, which imports this
// package, links no netlink library and builds on any OS. This file holds
// the pure half: the commands the underlay is built with and the parsing
// of "ip -j" output. Running them is in netns_linux.go.

// underlayCmds returns, in order, the ip commands that wire a lab whose
// namespaces exist: each is the namespace to run in (ip -n) and ip's
// arguments. The bridge lives in the underlay namespace, and each member's
// veth is created there with its eth0 end placed directly in the member's
// namespace, so no link ever exists in the host namespace, not even for a
// moment. No route is added: the /24 is on-link.
func underlayCmds(prefix string, members []Node) []ipCmd {
	underlay := prefix + underlaySuffix
	m := strconv.Itoa(mtu)
	cmds := []ipCmd{
		// nsfile brings lo up (with 127.0.0.1) everywhere; the underlay is
		// only a wire, with no address at all, not even lo's.
		{underlay, []string{"link", "set", "lo", "down"}},
		{underlay, []string{"addr", "flush", "dev", "lo"}},
		{underlay, []string{"link", "add", bridgeName, "mtu", m, "up", "type", "bridge"}},
	}
	for _, n := range members {
		addr := netip.PrefixFrom(n.Addr, underlayNet.Bits()).String()
		cmds = append(cmds,
			ipCmd{underlay, []string{"link", "add", n.Netns, "mtu", m, "master", bridgeName, "up",
				"type", "veth", "peer", "name", ifName, "mtu", m, "netns", n.Netns}},
			ipCmd{n.Netns, []string{"addr", "add", addr, "dev", ifName}},
			ipCmd{n.Netns, []string{"link", "set", ifName, "up"}},
		)
	}
	return cmds
}

// ipCmd is "ip -n NS ARGS…"; an empty NS is the caller's namespace.
type ipCmd struct {
	ns   string
	args []string
}

func (c ipCmd) argv() []string {
	if c.ns == "" {
		return c.args
	}
	return append([]string{"-n", c.ns}, c.args...)
}

// link is one entry of "ip -j link show" or "ip -j addr show".
type link struct {
	Name   string   `json:"ifname"`
	Flags  []string `json:"flags"` // "UP" when administratively up
	MTU    int      `json:"mtu"`
	Master string   `json:"master"` // the bridge a port is enslaved to
	Addrs  []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// Up reports whether the link is administratively up (IFF_UP).
func (l link) Up() bool { return slices.Contains(l.Flags, "UP") }

// route is one entry of "ip -j route show table all".
type route struct {
	Type    string `json:"type"` // empty: unicast
	Dst     string `json:"dst"`  // "default", a prefix, or an address (a host route)
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Table   string `json:"table"` // empty: main
}

// String renders the route as "ip route" prints it.
func (r route) String() string {
	f := []string{r.Dst}
	if r.Type != "" {
		f = append([]string{r.Type}, f...)
	}
	if r.Gateway != "" {
		f = append(f, "via", r.Gateway)
	}
	if r.Dev != "" {
		f = append(f, "dev", r.Dev)
	}
	if r.Table != "" {
		f = append(f, "table", r.Table)
	}
	return strings.Join(f, " ")
}

// parseJSON decodes the output of an "ip -j" command into a slice of T.
// Empty output is no entries.
func parseJSON[T any](data []byte, what string) ([]T, error) {
	var out []T
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("parse ip %s: %w", what, err)
	}
	return out, nil
}

// leavingRoutes returns the routes of "ip -j route show table all" output,
// in any table but local, that are default routes or lead outside
// 192.168.33.0/24.
func leavingRoutes(data []byte) ([]route, error) {
	routes, err := parseJSON[route](data, "route")
	if err != nil {
		return nil, err
	}
	var out []route
	for _, r := range routes {
		if r.Table != "local" && !inUnderlay(r.Dst) {
			out = append(out, r)
		}
	}
	return out, nil
}

// inUnderlay reports whether dst, as ip prints it, is within the underlay.
func inUnderlay(dst string) bool {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		a, err := netip.ParseAddr(dst) // a host route; also rejects "default"
		if err != nil {
			return false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return p.Addr().Is4() && p.Bits() >= underlayNet.Bits() && underlayNet.Contains(p.Addr())
}
