// Command meshctl drives meshd the way docker drives Swarm.
//
// The layout is docker/cli's: one file per command (service_create.go,
// node_ls.go, …), each with an xOptions struct, a newXCommand(cli) that
// declares the flags, and a runX(ctx, api, out, opts) that does the work
// over the narrow interface its group declares (serviceAPI, nodeAPI, …),
// which *api.Client satisfies and tests replace with fakeAPI. The client
// is built in one place, cli.withAPI, and inspect and rm, which differ
// only in the object, are one command each that takes the single client
// method it calls, as docker/cli's inspect package takes a getter.
//
// Flags follow docker's split: on a list (ls, ps) -f is --filter and
// --format has no shorthand; on inspect and info -f is --format. capture,
// which docker has not, takes tcpdump's -w, -c and -s, and its -f is a
// tcpdump filter expression. The
// filters take docker's keys and match as docker's daemon and swarmkit do
// (filter.go says how, per list), but meshctl applies them to what meshd
// lists rather than asking meshd to: meshd's lists are small, and the keys
// and values are checked, with docker's words, before meshd is asked.
// Where meshd has less than docker the filter says so by matching nothing:
// meshd keeps no labels, has no global services and no pending nodes. A
// node= filter takes a hostname or an ID prefix; docker's "self" is not
// resolved.
//
// A list's --format template runs on a context with docker's formatter
// fields (formatter.go), embedding meshd's object so that its other fields
// stay reachable; "table TEMPLATE", \t, {{json .}} and the error wording
// are docker's (format.go). --format json prints meshd's objects, and
// inspect and info templates run on them.
package main
