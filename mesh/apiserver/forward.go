package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Forwarder implements [Writes] on a worker: each write is signed with
// the token and sent to the manager's cluster API.
type Forwarder struct {
	Addr  string // the manager's cluster API, host:port
	Token string
}

var _ Writes = (*Forwarder)(nil)

func (f *Forwarder) UpdateNode(ctx context.Context, ref string, u api.NodeUpdate) (n api.Node, err error) {
	return n, f.call(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(ref)+"/update", u, &n)
}

func (f *Forwarder) RemoveNode(ctx context.Context, ref string, force bool) error {
	path := "/v1/nodes/" + url.PathEscape(ref)
	if force {
		path += "?force=1"
	}
	return f.call(ctx, http.MethodDelete, path, nil, nil)
}

func (f *Forwarder) CreateNetwork(ctx context.Context, req api.NetworkCreate) (n api.Network, err error) {
	return n, f.call(ctx, http.MethodPost, "/v1/networks", req, &n)
}

func (f *Forwarder) RemoveNetwork(ctx context.Context, ref string) error {
	return f.call(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(ref), nil, nil)
}

func (f *Forwarder) CreateService(ctx context.Context, req api.ServiceCreate) (s api.Service, err error) {
	return s, f.call(ctx, http.MethodPost, "/v1/services", req, &s)
}

func (f *Forwarder) ScaleService(ctx context.Context, ref string, replicas int) (s api.Service, err error) {
	return s, f.call(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(ref)+"/scale", api.ServiceScale{Replicas: replicas}, &s)
}

func (f *Forwarder) RemoveService(ctx context.Context, ref string) error {
	return f.call(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(ref), nil, nil)
}

// call sends one write; a manager that cannot be reached is a 502.
func (f *Forwarder) call(ctx context.Context, method, path string, in, out any) error {
	err := Call(ctx, f.Addr, f.Token, method, path, in, out)
	var se *api.StatusError
	if err != nil && !errors.As(err, &se) {
		return api.Errorf(http.StatusBadGateway, "forward to manager %s: %v", f.Addr, err)
	}
	return err
}

var clusterHTTP = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}}

// Call sends one signed request to a manager's cluster API and decodes
// its answer into out. An answer other than 2xx is an *api.StatusError
// with the manager's code and message; a failure to reach the manager is
// the transport's error, unwrapped from url.Error so callers can tell a
// refused connection from a refusal.
func Call(ctx context.Context, addr, token, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	signRequest(req, token, body, time.Now())
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = "meshd answered " + resp.Status
		}
		return &api.StatusError{Code: resp.StatusCode, Msg: e.Message}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
