package apiserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
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
// secret, and returns once this manager's replica has applied it, so that
// a read that follows sees it. The leader's refusals come back as they
// are; a leader that cannot be reached is a 502.
type Forwarder struct {
	c       *api.Client
	version atomic.Uint64 // of the leader's state after the last write
	applied func(ctx context.Context, version uint64) error
}

var _ Writes = (*Forwarder)(nil)

// NewForwarder returns a forwarder to the leader at addr; applied waits
// until the local replica has applied a state version (nil: no wait).
func NewForwarder(addr, leaderSecret string, applied func(ctx context.Context, version uint64) error) *Forwarder {
	f := &Forwarder{applied: applied}
	f.c = NewClusterClient(addr, leaderSecret).OnAnswer(func(h http.Header) {
		if v, err := strconv.ParseUint(h.Get(api.StateVersionHeader), 10, 64); err == nil {
			f.version.Store(v)
		}
	})
	return f
}

// done waits for the write's version here, after a successful write.
func (f *Forwarder) done(ctx context.Context, err error) error {
	if err != nil || f.applied == nil || f.version.Load() == 0 {
		return err
	}
	return f.applied(ctx, f.version.Load())
}

func (f *Forwarder) Join(ctx context.Context, req api.JoinRequest, role string) (api.JoinResponse, error) {
	resp, err := f.c.JoinAs(ctx, req, role)
	return resp, f.done(ctx, badGateway(err))
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
