// Package kstate reads a node's kernel snapshot (api.KernelSnapshot, GET
// /v1/kernel): for the node's own namespace and every namespace file meshd
// made, what "ip -d addr", "ip route", "ip neigh", "bridge fdb show",
// "iptables-save -c", "ipvsadm -Ln" and "nft list table inet meshd" would
// print there, as data. meshctl trace follows a connection through the
// snapshots of the nodes it crosses; graph draws them.
//
// It reads through the seams the libraries already have: overlay's Kernel
// for links, neighbours and forwarding entries, lb's IPTables, ReadIPVS
// and Nft for rules, IPVS and the flowtable. What no library needed
// before (routes, and which namespace a veth's peer is in) is read here,
// in kernel_linux.go.
// A read that fails is recorded in the namespace's Errors and the rest is
// still read: a snapshot is for looking at a node in trouble.
//
// The reads are not atomic across namespaces, nor within one (the
// iptables text and the links are read apart): a snapshot taken while the
// agent reconciles may show half of a change. Sizes are bounded (see
// api.MaxKernelEntries) so that a runaway table costs bounded memory.
package kstate
