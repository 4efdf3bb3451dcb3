// Package apiserver serves meshd's two HTTP APIs from one route table:
// the root-only unix socket that meshctl talks to (reads answered from
// this node's view, writes applied), and the cluster port (2377) on the
// manager, where every request carries the join token's signature.
//
// Writes go through the [Writes] interface, chosen once at wiring time:
// the manager implements it on the manager, and a [Forwarder] on workers,
// which signs each write and sends it to the manager's cluster port. The
// error a person sees is the same either way: the manager's
// api.StatusError, code and message, crosses the wire as it is.
package apiserver
