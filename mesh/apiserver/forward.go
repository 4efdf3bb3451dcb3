package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// NewClusterClient returns the api client for a manager's cluster API at
// addr, signing every request with token: how a worker forwards writes
// and how a node asks to join.
func NewClusterClient(addr, token string) *api.Client {
	return api.NewClusterClient(addr, func(req *http.Request, body []byte) {
		signRequest(req, token, body, time.Now())
	})
}

// Forwarder implements [Writes] on a worker: each write goes to the
// manager's cluster API through a [NewClusterClient]. The manager's
// refusals come back as they are; a manager that cannot be reached is a
// 502.
type Forwarder struct{ c *api.Client }

var _ Writes = (*Forwarder)(nil)

// NewForwarder returns a forwarder to the manager at addr.
func NewForwarder(addr, token string) *Forwarder { return &Forwarder{NewClusterClient(addr, token)} }

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
	return api.Errorf(http.StatusBadGateway, "forward to manager: %v", err)
}
