package api

import (
	"errors"
	"fmt"
	"net/http"
)

// StatusError is an error with the HTTP status it is answered with. Its
// text is what meshctl prints, so it reads as one line for a person. The
// manager returns it, the API server answers with its code, and a worker
// forwarding a write gets the same error back from the manager.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf returns a StatusError with code and a formatted message.
func Errorf(code int, format string, args ...any) error {
	return &StatusError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// NotFound is a 404: the object named does not exist.
func NotFound(format string, args ...any) error { return Errorf(http.StatusNotFound, format, args...) }

// Invalid is a 400: the request is malformed or out of range.
func Invalid(format string, args ...any) error { return Errorf(http.StatusBadRequest, format, args...) }

// Conflict is a 409: the request clashes with the cluster's state.
func Conflict(format string, args ...any) error { return Errorf(http.StatusConflict, format, args...) }

// StatusCode is the HTTP status err is answered with: its StatusError's
// code, 500 for any other error.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return http.StatusInternalServerError
}

// The refusals docker prints, with meshctl named instead of docker.
var (
	// ErrNotManager answers a cluster read or write on a worker.
	ErrNotManager = Errorf(http.StatusServiceUnavailable, "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.")
	// ErrNotInSwarm answers a cluster command on a node that has neither
	// initialised nor joined a cluster.
	ErrNotInSwarm = Errorf(http.StatusServiceUnavailable, "This node is not a swarm manager. Use \"meshctl swarm init\" or \"meshctl swarm join\" to connect this node to swarm and try again.")
	// ErrAlreadyInSwarm answers swarm init or join on a clustered node.
	ErrAlreadyInSwarm = Errorf(http.StatusServiceUnavailable, "This node is already part of a swarm. Use \"meshctl swarm leave\" to leave this swarm and join another one.")
	// ErrNoLeader answers a write when the managers have lost quorum.
	ErrNoLeader = Errorf(http.StatusServiceUnavailable, "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.")
)
