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

func (f *Forwarder) RunContainer(ctx context.Context, nodeID string, req api.ContainerCreate) (api.Task, error) {
	t, err := f.c.RunNodeContainer(ctx, nodeID, req)
	return t, f.done(ctx, badGateway(err))
}

func (f *Forwarder) StopContainer(ctx context.Context, nodeID, ref string, exitCode *int) error {
	return f.done(ctx, badGateway(f.c.StopNodeContainer(ctx, nodeID, ref, exitCode)))
}

func (f *Forwarder) StartContainer(ctx context.Context, nodeID, ref string) (api.Task, error) {
	t, err := f.c.StartNodeContainer(ctx, nodeID, ref)
	return t, f.done(ctx, badGateway(err))
}

func (f *Forwarder) RemoveContainer(ctx context.Context, nodeID, ref string, force bool) error {
	return f.done(ctx, badGateway(f.c.RemoveNodeContainer(ctx, nodeID, ref, force)))
}

func (f *Forwarder) ConnectContainer(ctx context.Context, nodeID, ref string, a api.ContainerAttach) (api.Task, error) {
	t, err := f.c.ConnectNodeContainer(ctx, nodeID, ref, a)
	return t, f.done(ctx, badGateway(err))
}

func (f *Forwarder) DisconnectContainer(ctx context.Context, nodeID, ref, network string) (api.Task, error) {
	t, err := f.c.DisconnectNodeContainer(ctx, nodeID, ref, network)
	return t, f.done(ctx, badGateway(err))
}

// NodeForwarder implements [ContainerWrites] on a worker: each request
// goes to a manager's cluster port with the node's certificate, which
// names the node (the nodeID given is not sent: a node acts on its own
// containers only). The managers are tried in turn while they cannot be
// reached; a manager's answer, refusal or not, is final.
type NodeForwarder struct {
	managers []string
	conf     *tls.Config
}

var _ ContainerWrites = (*NodeForwarder)(nil)

// NewNodeForwarder returns a forwarder to the managers at addrs
// (host:port), connecting with the node's client configuration conf.
func NewNodeForwarder(addrs []string, conf *tls.Config) *NodeForwarder {
	return &NodeForwarder{managers: addrs, conf: conf}
}

// each calls do with a client for each manager until one answers.
func (f *NodeForwarder) each(do func(c *api.Client) error) error {
	if len(f.managers) == 0 {
		return api.Errorf(http.StatusServiceUnavailable, "no manager known to reach")
	}
	var last error
	for _, addr := range f.managers {
		err := do(api.NewClusterClient(addr, f.conf))
		var se *api.StatusError
		if err == nil || errors.As(err, &se) {
			return err
		}
		last = err
	}
	return api.Errorf(http.StatusBadGateway, "reach a manager: %v", last)
}

func (f *NodeForwarder) RunContainer(ctx context.Context, _ string, req api.ContainerCreate) (api.Task, error) {
	var t api.Task
	err := f.each(func(c *api.Client) (err error) {
		t, err = c.RunNodeContainer(ctx, "", req)
		return err
	})
	return t, err
}

func (f *NodeForwarder) StopContainer(ctx context.Context, _, ref string, exitCode *int) error {
	return f.each(func(c *api.Client) error { return c.StopNodeContainer(ctx, "", ref, exitCode) })
}

func (f *NodeForwarder) StartContainer(ctx context.Context, _, ref string) (api.Task, error) {
	var t api.Task
	err := f.each(func(c *api.Client) (err error) {
		t, err = c.StartNodeContainer(ctx, "", ref)
		return err
	})
	return t, err
}

func (f *NodeForwarder) RemoveContainer(ctx context.Context, _, ref string, force bool) error {
	return f.each(func(c *api.Client) error { return c.RemoveNodeContainer(ctx, "", ref, force) })
}

func (f *NodeForwarder) ConnectContainer(ctx context.Context, _, ref string, a api.ContainerAttach) (api.Task, error) {
	var t api.Task
	err := f.each(func(c *api.Client) (err error) {
		t, err = c.ConnectNodeContainer(ctx, "", ref, a)
		return err
	})
	return t, err
}

func (f *NodeForwarder) DisconnectContainer(ctx context.Context, _, ref, network string) (api.Task, error) {
	var t api.Task
	err := f.each(func(c *api.Client) (err error) {
		t, err = c.DisconnectNodeContainer(ctx, "", ref, network)
		return err
	})
	return t, err
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
