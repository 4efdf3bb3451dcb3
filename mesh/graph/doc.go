// Package graph draws a cluster's topology as the tutorials draw it: per
// node the host namespace with mesh_gwbridge, the ingress sandbox, the
// load-balancer sandboxes, the overlay namespaces with br0 and vxlan0,
// the tasks' namespaces; the veth pairs between them, named as ip a names
// them (eth0@if12); the VXLAN tunnels between the nodes with their VNI;
// the services with their VIPs.
//
// It is rendering only. [Topology] is plain data that its caller fills
// (meshctl graph, from the API and each node's kernel snapshot); the
// renderers read nothing else, so the same topology gives the same bytes
// and the goldens hold whole outputs. DOT and Mermaid are text written
// here; SVG is Graphviz's layout of the DOT (Debian's graphviz package:
// the only layout engine that places nested clusters well, and a program
// rather than a library, so no cgo); HTML is one file holding that SVG
// inline and tables of the addresses, loading nothing from elsewhere, so
// it can be mailed or attached to an issue.
//
// Layout choices, for three nodes and a few services to read well: the
// nodes side by side in the order given, each a column whose namespaces
// stack by kind (host on top, then ingress_sbox, lb_, overlays, tasks),
// which invisible edges enforce; each overlay's vxlan0 in a row of its
// own so the tunnels of two networks do not share a line; tunnels do not
// constrain the layout, and services name their tasks instead of joining
// them by edges, because such edges cross every node and make dot reorder
// the nodes.
package graph
