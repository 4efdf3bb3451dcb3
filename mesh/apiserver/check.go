package apiserver

import (
	"net/http"

	"github.com/meshd/meshd/mesh/api"
)

// check answers meshctl check for this node.
func (s *Server) check(r *http.Request) (any, error) { return s.cfg.Node.Check(r.Context()) }

// pauseRepair is the test hook (POST /v1/debug/repair); the node refuses
// it unless meshd runs with --test-hooks.
func (s *Server) pauseRepair(r *http.Request) (any, error) {
	var req api.RepairPause
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if err := s.cfg.Node.PauseRepair(r.Context(), req.Paused); err != nil {
		return nil, err
	}
	return req, nil
}
