package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// NewClusterClient returns the api client for a manager's cluster API at
// addr, signing every request with key: a join token when a node asks to
// join, the leader's node secret when a manager forwards a write to it.
func NewClusterClient(addr, key string) *api.Client {
	return api.NewClusterClient(addr, func(req *http.Request, body []byte) {
		signRequest(req, key, body, time.Now())
	})
}

// Forwarder implements [Writes] on a manager that does not lead: each
// write goes to the leader's cluster API, signed with the leader's node
// secret. The leader's refusals come back as they are; a leader that
// cannot be reached is a 502.
type Forwarder struct{ c *api.Client }

var _ Writes = (*Forwarder)(nil)

// NewForwarder returns a forwarder to the leader at addr.
func NewForwarder(addr, leaderSecret string) *Forwarder {
	return &Forwarder{NewClusterClient(addr, leaderSecret)}
}

func (f *Forwarder) Join(ctx context.Context, req api.JoinRequest, role string) (api.JoinResponse, error) {
	resp, err := f.c.JoinAs(ctx, req, role)
	return resp, badGateway(err)
}

func (f *Forwarder) RotateJoinToken(ctx context.Context, role string) (api.JoinToken, error) {
	jt, err := f.c.JoinToken(ctx, role, true)
	return jt, badGateway(err)
}

func (f *Forwarder) UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	n, err := f.c.UpdateNode(ctx, ref, u)
	return n, badGateway(err)
}

func (f *Forwarder) RemoveNode(ctx context.Context, ref string, force bool) error {
	return badGateway(f.c.RemoveNode(ctx, ref, force))
}

func (f *Forwarder) CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error) {
	n, err := f.c.CreateNetwork(ctx, req)
	return n, badGateway(err)
}

func (f *Forwarder) RemoveNetwork(ctx context.Context, ref string) error {
	return badGateway(f.c.RemoveNetwork(ctx, ref))
}

func (f *Forwarder) CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error) {
	s, err := f.c.CreateService(ctx, req)
	return s, badGateway(err)
}

func (f *Forwarder) ScaleService(ctx context.Context, ref string, replicas int) (api.Service, error) {
	s, err := f.c.ScaleService(ctx, ref, replicas)
	return s, badGateway(err)
}

func (f *Forwarder) RemoveService(ctx context.Context, ref string) error {
	return badGateway(f.c.RemoveService(ctx, ref))
}

// badGateway keeps the manager's own answer and makes any other failure
// (the manager unreachable) a 502.
func badGateway(err error) error {
	var se *api.StatusError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return api.Errorf(http.StatusBadGateway, "forward to the leader: %v", err)
}
