package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// DefaultSocket is where meshd listens unless --run-dir says otherwise.
const DefaultSocket = "/var/run/meshd/meshd.sock"

// Client talks to one meshd: over its unix socket (NewClient, what
// meshctl uses), or to a manager's cluster port (NewClusterClient, what a
// worker forwards its writes through).
type Client struct {
	base  string // URL prefix of every path
	where string // what an unreachable meshd is named by: the socket or host:port
	http  *http.Client
	// seen, when set, is called with every answer's header.
	seen func(http.Header)
}

// StateVersionHeader carries, on a manager's answer to a write, the
// version of its state after the write: a manager that forwarded the
// write waits until its own replica has applied that much, so that a
// read after a write sees the write.
const StateVersionHeader = "X-Meshd-State-Version"

// RenewForHeader names the node a manager forwards a renewal for; the
// leader believes it only from a manager's certificate.
const RenewForHeader = "X-Meshd-Renew-For"

// OnAnswer makes c call f with the header of every answer; it returns c.
func (c *Client) OnAnswer(f func(http.Header)) *Client {
	c.seen = f
	return c
}

// NewClient returns a client for the meshd listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{base: "http://meshd", where: socket, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// NewClusterClient returns a client for a manager's cluster API at addr
// (host:port) over TLS with conf: a joining node's pinned to the CA its
// token names, a node's with its certificate.
func NewClusterClient(addr string, conf *tls.Config) *Client {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, TLSClientConfig: conf,
		TLSHandshakeTimeout: 5 * time.Second, ForceAttemptHTTP2: false}
	return &Client{base: "https://" + addr, where: addr, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Join asks a manager to admit this node (cluster port only); the token
// in the request gives the role.
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	var out JoinResponse
	err := c.do(ctx, http.MethodPost, "/v1/cluster/join", req, &out)
	return out, err
}

// RenewFor forwards a renewal for another node to the leader (a
// manager's, with its own certificate).
func (c *Client) RenewFor(ctx context.Context, nodeID string, req RenewRequest) (RenewResponse, error) {
	var out RenewResponse
	err := c.doWith(ctx, http.MethodPost, "/v1/cluster/renew", http.Header{RenewForHeader: {nodeID}}, req, &out)
	return out, err
}

// Renew asks a manager for a new certificate for this node's key, with
// the role the cluster now gives it, and the current roots and gossip
// keys (cluster port, with this node's certificate).
func (c *Client) Renew(ctx context.Context, req RenewRequest) (RenewResponse, error) {
	var out RenewResponse
	err := c.do(ctx, http.MethodPost, "/v1/cluster/renew", req, &out)
	return out, err
}

// Info returns the answering node's view of itself and the cluster.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var out Info
	err := c.do(ctx, http.MethodGet, "/v1/info", nil, &out)
	return out, err
}

// Nodes lists every node the cluster knows, with the status this node sees.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
	return out, err
}

// Node returns one node by ID, ID prefix or hostname.
func (c *Client) Node(ctx context.Context, ref string) (Node, error) {
	var out Node
	err := c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// UpdateNode changes a node's settings (forwarded to the manager).
func (c *Client) UpdateNode(ctx context.Context, ref string, u NodeUpdate) (Node, error) {
	var out Node
	err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(ref)+"/update", u, &out)
	return out, err
}

// RemoveNode forgets a node that is down (forwarded to the manager).
func (c *Client) RemoveNode(ctx context.Context, ref string, force bool) error {
	path := "/v1/nodes/" + url.PathEscape(ref)
	if force {
		path += "?force=1"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// JoinToken returns the join token for role (worker or manager) and the
// address to join; rotate replaces that token first (a cluster write).
func (c *Client) JoinToken(ctx context.Context, role string, rotate bool) (JoinToken, error) {
	var out JoinToken
	if rotate {
		err := c.do(ctx, http.MethodPost, "/v1/swarm/join-token/"+url.PathEscape(role)+"/rotate", nil, &out)
		return out, err
	}
	err := c.do(ctx, http.MethodGet, "/v1/swarm/join-token/"+url.PathEscape(role), nil, &out)
	return out, err
}

// CA returns the cluster's root CA; rotate makes a new one first (the
// join tokens change with it).
func (c *Client) CA(ctx context.Context, rotate bool) (SwarmCA, error) {
	var out SwarmCA
	if rotate {
		err := c.do(ctx, http.MethodPost, "/v1/swarm/ca/rotate", nil, &out)
		return out, err
	}
	err := c.do(ctx, http.MethodGet, "/v1/swarm/ca", nil, &out)
	return out, err
}

// SwarmInit makes the answering node the first manager of a new cluster.
func (c *Client) SwarmInit(ctx context.Context, req SwarmInit) (SwarmInitResponse, error) {
	var out SwarmInitResponse
	err := c.do(ctx, http.MethodPost, "/v1/swarm/init", req, &out)
	return out, err
}

// SwarmJoin joins the answering node to the cluster of the manager at
// req.RemoteAddr, as a worker or a manager as the token says.
func (c *Client) SwarmJoin(ctx context.Context, req SwarmJoin) (SwarmJoinResponse, error) {
	var out SwarmJoinResponse
	err := c.do(ctx, http.MethodPost, "/v1/swarm/join", req, &out)
	return out, err
}

// SwarmLeave takes the answering node out of its cluster: its tasks stop
// and its namespaces go. A manager must be forced.
func (c *Client) SwarmLeave(ctx context.Context, req SwarmLeave) error {
	return c.do(ctx, http.MethodPost, "/v1/swarm/leave", req, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, method, path, nil, in, out)
}

func (c *Client) doWith(ctx context.Context, method, path string, hdr http.Header, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.sendError(method, path, err)
	}
	defer resp.Body.Close()
	if c.seen != nil {
		c.seen(resp.Header)
	}
	return DecodeResponse(resp, out)
}

// sendError is the error of a request that got no answer.
func (c *Client) sendError(method, path string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || isConnRefused(err) {
		return fmt.Errorf("cannot reach meshd at %s: is it running? (%w)", c.where, unwrapURL(err))
	}
	return fmt.Errorf("%s %s: %w", method, path, unwrapURL(err))
}

// DecodeResponse reads a meshd answer: the JSON body into out on success,
// otherwise a *StatusError with the answer's code and the server's
// one-line message.
func DecodeResponse(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = "meshd answered " + resp.Status
		}
		return &StatusError{Code: resp.StatusCode, Msg: e.Message}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Networks lists the networks as the node shows them: the swarm's it
// knows and its local ones, without their endpoints.
func (c *Client) Networks(ctx context.Context) ([]NetworkResource, error) {
	var out []NetworkResource
	err := c.do(ctx, http.MethodGet, "/v1/networks", nil, &out)
	return out, err
}

// Network returns one network with its endpoints on the node, and its
// peers.
func (c *Client) Network(ctx context.Context, ref string) (NetworkResource, error) {
	var out NetworkResource
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// CreateNetwork creates an overlay network.
func (c *Client) CreateNetwork(ctx context.Context, req NetworkCreate) (Network, error) {
	var out Network
	err := c.do(ctx, http.MethodPost, "/v1/networks", req, &out)
	return out, err
}

// RemoveNetwork removes a network no service uses.
func (c *Client) RemoveNetwork(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(ref), nil, nil)
}

// Services lists the services.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &out)
	return out, err
}

// Service returns one service.
func (c *Client) Service(ctx context.Context, ref string) (Service, error) {
	var out Service
	err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// CreateService creates a service and schedules its tasks.
func (c *Client) CreateService(ctx context.Context, req ServiceCreate) (Service, error) {
	var out Service
	err := c.do(ctx, http.MethodPost, "/v1/services", req, &out)
	return out, err
}

// ScaleService changes a service's replica count.
func (c *Client) ScaleService(ctx context.Context, ref string, replicas int) (Service, error) {
	var out Service
	err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/scale", ServiceScale{Replicas: replicas}, &out)
	return out, err
}

// UpdateService changes a service's spec; its tasks are replaced as its
// update config says.
func (c *Client) UpdateService(ctx context.Context, ref string, u ServiceUpdate) (Service, error) {
	var out Service
	err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/update", u, &out)
	return out, err
}

// RollbackService restores a service's previous spec.
func (c *Client) RollbackService(ctx context.Context, ref string) (Service, error) {
	var out Service
	err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/rollback", nil, &out)
	return out, err
}

// RemoveService removes a service and its tasks.
func (c *Client) RemoveService(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(ref), nil, nil)
}

// Tasks lists tasks, of one service and/or one node when given.
func (c *Client) Tasks(ctx context.Context, service, node string) ([]Task, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if node != "" {
		q.Set("node", node)
	}
	var out []Task
	err := c.do(ctx, http.MethodGet, "/v1/tasks?"+q.Encode(), nil, &out)
	return out, err
}

// Task returns one task by ID, ID prefix or name (www.1).
func (c *Client) Task(ctx context.Context, ref string) (Task, error) {
	var out Task
	err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// Namespaces lists the namespace files of the answering node.
func (c *Client) Namespaces(ctx context.Context) ([]Namespace, error) {
	var out []Namespace
	err := c.do(ctx, http.MethodGet, "/v1/namespaces", nil, &out)
	return out, err
}

// LBTables returns the load-balancing tables of the answering node.
func (c *Client) LBTables(ctx context.Context) ([]LBTable, error) {
	var out []LBTable
	err := c.do(ctx, http.MethodGet, "/v1/lb", nil, &out)
	return out, err
}

// Container returns a task as docker inspect shows a container, by
// container ID or name, task ID or name, or a prefix (see
// [MatchContainer]).
func (c *Client) Container(ctx context.Context, ref string) (Container, error) {
	var out Container
	err := c.do(ctx, http.MethodGet, "/v1/containers/"+url.PathEscape(ref), nil, &out)
	return out, err
}

// Containers returns the answering node's tasks as containers, the ended
// ones it still knows included.
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var out []Container
	err := c.do(ctx, http.MethodGet, "/v1/containers", nil, &out)
	return out, err
}

// TaskLogs streams the output of a task the answering node runs: the
// last tail lines ("" or "all" for all of it), then, with follow, what
// it writes until it ends or ctx does. The caller closes the stream.
func (c *Client) TaskLogs(ctx context.Context, ref, tail string, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if tail != "" {
		q.Set("tail", tail)
	}
	if follow {
		q.Set("follow", "1")
	}
	path := "/v1/tasks/" + url.PathEscape(ref) + "/logs?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	// The client's timeout would cut a followed log; ctx bounds it.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.sendError(http.MethodGet, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, DecodeResponse(resp, nil)
	}
	return resp.Body, nil
}
