package main

import "github.com/meshd/meshd/mesh/api"

// modeOf is a service's MODE as docker service ls prints it: replicated
// unless meshd says global (a record from before modes has none).
func modeOf(s api.Service) string {
	if s.Mode == api.ModeGlobal {
		return api.ModeGlobal
	}
	return api.ModeReplicated
}
