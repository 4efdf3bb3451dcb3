package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/meshd/meshd/mesh/api"
)

// Forwarder implements [Writes] on a manager that does not lead: each
// write goes to the leader's cluster API over mutual TLS with this
// manager's certificate, and returns once this manager's replica has
// applied it, so that a read that follows sees it. The leader's refusals come back as they
// are; a leader that cannot be reached is a 502.
type Forwarder struct {
	c       *api.Client
	version atomic.Uint64 // of the leader's state after the last write
	applied func(ctx context.Context, version uint64) error
}

var _ Writes = (*Forwarder)(nil)

// NewForwarder returns a forwarder to the leader at addr, connecting with
// conf; applied waits until the local replica has applied a state
// version (nil: no wait).
func NewForwarder(addr string, conf *tls.Config, applied func(ctx context.Context, version uint64) error) *Forwarder {
	f := &Forwarder{applied: applied}
	f.c = api.NewClusterClient(addr, conf).OnAnswer(func(h http.Header) {
		if v, err := strconv.ParseUint(h.Get(api.StateVersionHeader), 10, 64); err == nil {
			f.version.Store(v)
		}
	})
	return f
}

// done waits for the write's version here, after a successful write. The
// write is done whatever the wait gives: a manager being demoted by this
// very write may never apply it.
func (f *Forwarder) done(ctx context.Context, err error) error {
	if err != nil || f.applied == nil || f.version.Load() == 0 {
		return err
	}
	_ = f.applied(ctx, f.version.Load())
	return nil
}

func (f *Forwarder) Join(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	resp, err := f.c.Join(ctx, req)
	return resp, f.done(ctx, badGateway(err))
}

func (f *Forwarder) Renew(ctx context.Context, nodeID string, req api.RenewRequest) (api.RenewResponse, error) {
	resp, err := f.c.RenewFor(ctx, nodeID, req)
	return resp, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RotateCA(ctx context.Context) (api.SwarmCA, error) {
	out, err := f.c.CA(ctx, true)
	return out, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RotateJoinToken(ctx context.Context, role string) (api.JoinToken, error) {
	jt, err := f.c.JoinToken(ctx, role, true)
	return jt, f.done(ctx, badGateway(err))
}

func (f *Forwarder) UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (api.Node, error) {
	n, err := f.c.UpdateNode(ctx, ref, u)
	return n, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RemoveNode(ctx context.Context, ref string, force bool) error {
	return f.done(ctx, badGateway(f.c.RemoveNode(ctx, ref, force)))
}

func (f *Forwarder) CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error) {
	n, err := f.c.CreateNetwork(ctx, req)
	return n, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RemoveNetwork(ctx context.Context, ref string) error {
	return f.done(ctx, badGateway(f.c.RemoveNetwork(ctx, ref)))
}

func (f *Forwarder) CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error) {
	s, err := f.c.CreateService(ctx, req)
	return s, f.done(ctx, badGateway(err))
}

func (f *Forwarder) ScaleService(ctx context.Context, ref string, replicas int) (api.Service, error) {
	s, err := f.c.ScaleService(ctx, ref, replicas)
	return s, f.done(ctx, badGateway(err))
}

func (f *Forwarder) UpdateService(ctx context.Context, ref string, u api.ServiceUpdate) (api.Service, error) {
	s, err := f.c.UpdateService(ctx, ref, u)
	return s, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RollbackService(ctx context.Context, ref string) (api.Service, error) {
	s, err := f.c.RollbackService(ctx, ref)
	return s, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RemoveService(ctx context.Context, ref string) error {
	return f.done(ctx, badGateway(f.c.RemoveService(ctx, ref)))
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
