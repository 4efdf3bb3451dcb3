package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// hop is one place meshctl capture listens: NODE:[NAMESPACE:]INTERFACE.
type hop struct {
	spec      string // as typed: the pcapng interface's name
	node      string // a lab node, or the node meshctl talks to
	namespace string // "" for the node's own; a namespace ns ls lists, or a task
	iface     string
}

// parseHop reads NODE:INTERFACE or NODE:NAMESPACE:INTERFACE. No part of
// it holds a colon: node names are host names, namespaces are ns ls's
// names or task references, and an interface name with a colon is an
// address label (eth0:1), which has no packets of its own.
func parseHop(s string) (hop, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return hop{}, fmt.Errorf("hop %s: want NODE:INTERFACE or NODE:NAMESPACE:INTERFACE (NAMESPACE as ns ls lists it, or a task)", api.Quote(s))
	}
	h := hop{spec: s, node: parts[0], iface: parts[len(parts)-1]}
	if len(parts) == 3 {
		h.namespace = parts[1]
	}
	if len(h.iface) > 15 { // IFNAMSIZ less its NUL
		return hop{}, fmt.Errorf("hop %s: interface name %s is longer than 15 bytes", api.Quote(s), api.Quote(h.iface))
	}
	return h, nil
}

// parseHops reads every hop, refusing one given twice, and groups them
// by node in the order the nodes first appear.
func parseHops(args []string) ([]hop, []string, error) {
	var hops []hop
	var nodes []string
	seen := map[string]bool{}
	for _, a := range args {
		h, err := parseHop(a)
		if err != nil {
			return nil, nil, err
		}
		key := h.node + "\x00" + h.namespace + "\x00" + h.iface
		if seen[key] {
			return nil, nil, fmt.Errorf("hop %s is given twice", api.Quote(a))
		}
		seen[key] = true
		if !slices.Contains(nodes, h.node) {
			nodes = append(nodes, h.node)
		}
		hops = append(hops, h)
	}
	if len(hops) > api.MaxCaptureHops {
		return nil, nil, fmt.Errorf("%d hops: at most %d", len(hops), api.MaxCaptureHops)
	}
	return hops, nodes, nil
}
