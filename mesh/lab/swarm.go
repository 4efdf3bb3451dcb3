package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// dialRetry is how often FormSwarm tries again a socket nobody listens on
// yet.
const dialRetry = 100 * time.Millisecond

// FormSwarm makes the lab's nodes one swarm through each node's API
// socket, the requests a user makes with meshctl: swarm init on node1,
// advertising its lab address; from node1, the join tokens needed; then,
// one node at a time in order, swarm join on node2…nodeN against node1's
// address on the cluster port ([api.DefaultAPIPort]), node2…node<managers>
// with the manager token and the others with the worker token. So the
// lab's swarm is made exactly as a user's is, and nothing about it is
// passed to the daemons on their command lines.
//
// managers is 1 to the number of nodes. A request to a node whose socket
// is not there yet, or not listening yet, is sent again every 100 ms until
// ctx ends; any answer from meshd that is an error ends FormSwarm at once.
// Errors are [*NodeError]s naming the node. progress, if not nil, gets one
// line per init and join: the meshctl command it stands for and its
// outcome. FormSwarm uses only the sockets, so it works on any OS and on
// any daemons serving [api.Client]'s paths, such as a test's.
func FormSwarm(ctx context.Context, l *Lab, managers int, progress io.Writer) error {
	nodes := l.Nodes()
	if managers < 1 || managers > len(nodes) {
		return fmt.Errorf("lab: form a swarm of %d managers: want 1 to %d (the nodes)", managers, len(nodes))
	}
	if progress == nil {
		progress = io.Discard
	}
	first := nodes[0]
	cl := api.NewClient(l.Socket(first.Name))
	initReq := api.SwarmInit{AdvertiseAddr: first.Addr.String()}
	if _, err := retryDial(ctx, func() (api.SwarmInitResponse, error) { return cl.SwarmInit(ctx, initReq) }); err != nil {
		return &NodeError{Node: first.Name, Err: fmt.Errorf("swarm init: %w", err)}
	}
	fmt.Fprintf(progress, "%s: swarm init --advertise-addr %s: swarm initialized\n", first.Name, initReq.AdvertiseAddr)

	remote := netip.AddrPortFrom(first.Addr, api.DefaultAPIPort).String()
	tokens := map[string]string{}
	for i, n := range nodes[1:] {
		role := api.RoleWorker
		if i+2 <= managers {
			role = api.RoleManager
		}
		if tokens[role] == "" {
			jt, err := cl.JoinToken(ctx, role, false)
			if err != nil {
				return &NodeError{Node: first.Name, Err: fmt.Errorf("swarm join-token %s: %w", role, err)}
			}
			tokens[role] = jt.Token
		}
		ncl := api.NewClient(l.Socket(n.Name))
		req := api.SwarmJoin{RemoteAddr: remote, Token: tokens[role]}
		resp, err := retryDial(ctx, func() (api.SwarmJoinResponse, error) { return ncl.SwarmJoin(ctx, req) })
		if err == nil && resp.Role != "" && resp.Role != role {
			err = fmt.Errorf("joined as a %s, want a %s", resp.Role, role)
		}
		if err != nil {
			return &NodeError{Node: n.Name, Err: fmt.Errorf("swarm join as a %s: %w", role, err)}
		}
		fmt.Fprintf(progress, "%s: swarm join --token <%s token> %s: joined as a %s\n", n.Name, role, remote, role)
	}
	return nil
}

// retryDial calls f until it fails otherwise than by finding nobody
// listening, which is a daemon still starting, or ctx ends.
func retryDial[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if err == nil || !notListening(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(dialRetry):
		}
	}
}

// notListening reports whether err is a failure to connect: no socket
// file yet, or nobody accepting on it. [api.Client] wraps the dial error.
func notListening(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
