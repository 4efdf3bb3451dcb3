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
package main
