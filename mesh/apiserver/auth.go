package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
)

// The cluster port's paths that need no manager's certificate.
const (
	joinPath  = "/v1/cluster/join"
	renewPath = "/v1/cluster/renew"
)

// Peers decides whether a node whose certificate verified may call the
// cluster port: it must still be part of the cluster and, where manager
// says so, be a manager by its certificate and in the cluster's state
// (a demoted manager's certificate loses its rights at once, and its
// renewal gives it a worker's).
type Peers interface {
	Check(p ca.Peer, manager bool) error
}

// peerKey carries the verified caller in a request's context.
type peerKey struct{}

// authorize admits a cluster-port request by the certificate the TLS
// handshake verified: a join needs none (its token is checked by the
// manager), a renewal, a log push or a request on the caller's own
// containers any node's, anything else a manager's.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == joinPath {
			next.ServeHTTP(w, r)
			return
		}
		needManager := (r.URL.Path != renewPath || r.Header.Get(api.RenewForHeader) != "") && !isLogPush(r.URL.Path) &&
			(!isNodeContainers(r.URL.Path) || r.Header.Get(api.NodeForHeader) != "")
		peer, err := s.peerOf(r, needManager)
		if err != nil {
			s.refused(r, err)
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, peer)))
	})
}

// peerOf is the caller the TLS handshake verified.
func (s *Server) peerOf(r *http.Request, manager bool) (ca.Peer, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ca.Peer{}, api.Errorf(http.StatusUnauthorized, "a node certificate of this cluster is required")
	}
	peer, err := ca.PeerOf(r.TLS.VerifiedChains[0][0])
	if err != nil {
		return ca.Peer{}, api.Errorf(http.StatusUnauthorized, "%v", err)
	}
	if s.cfg.Peers == nil {
		return ca.Peer{}, errors.New("this node serves no cluster API")
	}
	if manager && peer.Role != api.RoleManager {
		return ca.Peer{}, api.Errorf(http.StatusForbidden, "only managers may call %s", r.URL.Path)
	}
	if err := s.cfg.Peers.Check(peer, manager); err != nil {
		return ca.Peer{}, err
	}
	return peer, nil
}

// renewFor is the node a renewal is for: the caller, or, when a manager
// forwards it to the leader, the node it names.
func renewFor(r *http.Request) (string, error) {
	return forwardedFor(r, api.RenewForHeader, "renewals")
}

// isNodeContainers says whether a cluster path is a node's request on
// its own standalone containers.
func isNodeContainers(path string) bool {
	return path == api.ClusterContainersPath || strings.HasPrefix(path, api.ClusterContainersPath+"/")
}

// nodeFor is the node a container request is for: the caller, or, when
// a manager forwards it to the leader, the node it names.
func nodeFor(r *http.Request) (string, error) {
	return forwardedFor(r, api.NodeForHeader, "a node's container requests")
}

// forwardedFor is the node a request acts for: the node header names,
// which only a manager forwarding the request may set (what names the
// requests in the refusal), or else the caller.
func forwardedFor(r *http.Request, header, what string) (string, error) {
	peer, _ := r.Context().Value(peerKey{}).(ca.Peer)
	if fwd := r.Header.Get(header); fwd != "" {
		if peer.Role != api.RoleManager {
			return "", api.Errorf(http.StatusForbidden, "only managers forward %s", what)
		}
		return fwd, nil
	}
	if peer.NodeID == "" {
		return "", api.Errorf(http.StatusUnauthorized, "a node certificate of this cluster is required")
	}
	return peer.NodeID, nil
}
