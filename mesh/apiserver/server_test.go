package apiserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/manager"
	"github.com/meshd/meshd/mesh/records"
)

const testToken = "SWMTKN-1-0123456789abcdefghij"

// fakeNode answers the reads from a manager over a fake gossip store.
type fakeNode struct {
	m  *manager.Manager
	db *records.FakeDB
}

func (n fakeNode) Info() api.Info                          { return api.Info{NodeID: "m1", Role: api.RoleManager} }
func (n fakeNode) JoinToken() api.JoinToken                { return api.JoinToken{Token: testToken} }
func (n fakeNode) Objects() records.Objects                { return n.m.Objects() }
func (n fakeNode) TaskStatuses() map[string]api.TaskStatus { return records.TaskStatuses(n.db) }
func (n fakeNode) Nodes() []api.Node                       { return n.m.Nodes() }
func (n fakeNode) Namespaces() (string, []string, error) {
	return "/run/x", []string{"ingress_sbox"}, nil
}
func (n fakeNode) LBTables() []api.LBTable { return nil }

// newTestServers starts the manager's cluster API and a worker's local
// API whose writes are forwarded to it, both over HTTP on loopback.
func newTestServers(t *testing.T) (worker *api.Client, clusterURL string) {
	t.Helper()
	store, err := manager.OpenStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	self := api.Node{ID: "m1", Hostname: "node1", Role: api.RoleManager, Availability: api.AvailabilityActive,
		Addr: "192.168.33.10", AddrPrefix: "192.168.33.10/24", CreatedAt: time.Now()}
	if err := manager.Bootstrap(store, "c1", testToken, self); err != nil {
		t.Fatal(err)
	}
	db := records.NewFakeDB("m1")
	m, err := manager.New(manager.Config{Store: store, DB: db, NodeID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := New(Config{Node: fakeNode{m, db}, Writes: m, Joiner: m, Token: func() string { return testToken }})
	if err != nil {
		t.Fatal(err)
	}
	cluster := httptest.NewServer(mgr.ClusterHandler())
	t.Cleanup(cluster.Close)
	fwd := NewForwarder(strings.TrimPrefix(cluster.URL, "http://"), testToken)
	wrk, err := New(Config{Node: fakeNode{m, db}, Writes: fwd, Token: func() string { return testToken }})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "meshd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: wrk.LocalHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return api.NewClient(sock), cluster.URL
}

func TestWritesForwardedToTheManager(t *testing.T) {
	c, _ := newTestServers(t)
	ctx := context.Background()
	n, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet"})
	if err != nil || n.Subnet != "10.0.0.0/24" {
		t.Fatalf("network create through a worker: %+v, %v", n, err)
	}
	if _, err := c.CreateService(ctx, api.ServiceCreate{Name: "www", Image: "whoami", Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 1 || svcs[0].Name != "www" {
		t.Errorf("service ls after create: %+v, %v", svcs, err)
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"the manager's refusal comes back as it is", func() error { _, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "ovnet"}); return err },
			"network with name ovnet already exists"},
		{"a read's not found", func() error { _, err := c.Service(ctx, "nope"); return err }, "service nope not found"},
		{"in use", func() error { return c.RemoveNetwork(ctx, "ovnet") }, "network ovnet is in use by service www"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestClusterPortRefusesUnsignedAndUnknown(t *testing.T) {
	_, url := newTestServers(t)
	resp, err := http.Post(url+"/v1/networks", "application/json", strings.NewReader(`{"Name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned write: %s, want 401", resp.Status)
	}
	addr := strings.TrimPrefix(url, "http://")
	_, err = NewClusterClient(addr, testToken+"x").CreateNetwork(context.Background(), api.NetworkCreate{Name: "x"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Msg != "invalid join token" {
		t.Errorf("wrong token: %v, want a 401 saying invalid join token", err)
	}
	body := []byte(`{"Name":"x","Bogus":1}`)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/networks", bytes.NewReader(body))
	signRequest(req, testToken, body, time.Now())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "unknown field") {
		t.Errorf("signed, unknown field: %s %s, want a 400 naming it", resp.Status, msg)
	}
	joined, err := NewClusterClient(addr, testToken).Join(context.Background(),
		api.JoinRequest{ID: "w2", Hostname: "node2", Addr: "192.168.33.11", GossipPort: 7946})
	if err != nil || joined.ClusterID != "c1" {
		t.Errorf("signed join: %+v, %v", joined, err)
	}
}

func TestForwarderWithoutManager(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody listens on once closed
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewForwarder(addr, testToken).CreateNetwork(context.Background(), api.NetworkCreate{Name: "x"})
	if api.StatusCode(err) != http.StatusBadGateway || !strings.HasPrefix(err.Error(), "forward to manager: cannot reach meshd at "+addr) {
		t.Errorf("unreachable manager: %v (code %d), want a 502 naming it", err, api.StatusCode(err))
	}
}
