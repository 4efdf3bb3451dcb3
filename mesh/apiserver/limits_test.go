package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// unsized hides its length from http.NewRequest, so the body is sent
// chunked, without a Content-Length the server could refuse up front.
type unsized struct{ io.Reader }

// TestRequestLimits sends bodies over and at the caps, and bodies the
// strict decoder refuses, to a leader's local socket and cluster port:
// each refusal is one line with its status, and changes nothing.
func TestRequestLimits(t *testing.T) {
	tc := newTestCluster(t)
	leader, err := New(Config{Node: fakeNode{tc.m, tc.db, func() (Writes, error) { return tc.m, nil }, nil}, Swarm: fakeSwarm{},
		Peers: fakePeers{tc.m}})
	if err != nil {
		t.Fatal(err)
	}
	local := httptest.NewServer(leader.LocalHandler())
	t.Cleanup(local.Close)
	padded := func(body string, size int) string { return body + strings.Repeat(" ", size-len(body)) }
	over := func(size int) string { return padded(`{"Name":"big","Image":"alpine"}`, size+1) }
	tests := []struct {
		name     string
		cluster  bool // else the local socket
		chunked  bool
		body     string
		wantCode int
		wantMsg  string // the start of the error; "" for a 200
	}{
		{name: "local: over 4 MiB", body: over(maxLocalBody), wantCode: 413, wantMsg: "request body over 4 MiB"},
		{name: "local: over 4 MiB, chunked", chunked: true, body: over(maxLocalBody), wantCode: 413, wantMsg: "request body over 4 MiB"},
		{name: "local: 4 MiB exactly", body: padded(`{"Name":"four","Image":"alpine"}`, maxLocalBody), wantCode: 200},
		{name: "cluster: over 1 MiB", cluster: true, body: over(maxBody), wantCode: 413, wantMsg: "request body over 1 MiB"},
		{name: "cluster: over 1 MiB, chunked", cluster: true, chunked: true, body: over(maxBody), wantCode: 413, wantMsg: "request body over 1 MiB"},
		{name: "cluster: 1 MiB exactly", cluster: true, body: padded(`{"Name":"one","Image":"alpine"}`, maxBody), wantCode: 200},
		{name: "trailing data", body: `{"Name":"x","Image":"alpine"} trailing`, wantCode: 400, wantMsg: "decode request: data after the JSON value"},
		{name: "two objects", body: `{"Name":"x","Image":"alpine"}{"Name":"y","Image":"alpine"}`, wantCode: 400, wantMsg: "decode request: data after"},
		{name: "trailing white space", body: "{\"Name\":\"ws\",\"Image\":\"alpine\"} \n\t", wantCode: 200},
		{name: "unknown field", body: `{"Name":"x","Image":"alpine","Bogus":1}`, wantCode: 400, wantMsg: `decode request: json: unknown field "Bogus"`},
		{name: "long unknown field", body: `{"` + strings.Repeat("F", 5000) + `":1}`, wantCode: 400, wantMsg: `decode request: json: unknown field "FFFF`},
		{name: "field over its limit", body: `{"Name":"` + strings.Repeat("n", 100) + `","Image":"alpine"}`, wantCode: 400,
			wantMsg: "invalid service name " + api.Quote(strings.Repeat("n", 100))},
		{name: "cluster: trailing data", cluster: true, body: `{"Name":"x","Image":"alpine"} trailing`, wantCode: 400, wantMsg: "decode request: data after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tc.m.State()
			url, client := local.URL, http.DefaultClient
			if tt.cluster {
				url = "https://" + tc.leaderAddr
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: tc.ids["m2"].ClientConfig()}}
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = unsized{body}
			}
			req, err := http.NewRequest(http.MethodPost, url+"/v1/services", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %s (%.200s), want %d", resp.Status, raw, tt.wantCode)
			}
			if tt.wantMsg == "" {
				return
			}
			if err := json.Unmarshal(raw, &e); err != nil || !strings.HasPrefix(e.Message, tt.wantMsg) {
				t.Errorf("message %q (%v), want one starting %q", e.Message, err, tt.wantMsg)
			}
			if strings.Contains(e.Message, "\n") || len(e.Message) > 256 {
				t.Errorf("message is %d bytes or several lines: %.300q", len(e.Message), e.Message)
			}
			if after := tc.m.State(); after.Version != before.Version {
				t.Errorf("a refused request changed the state: version %d → %d", before.Version, after.Version)
			}
		})
	}
}

// TestSlowRoutesOutliveTheWriteTimeout serves the local API with a write
// timeout already over when a handler answers: swarm join still answers
// (a join may wait for a manager far longer than the timeout), info does
// not.
func TestSlowRoutesOutliveTheWriteTimeout(t *testing.T) {
	tc := newTestCluster(t)
	c := serveLocal(t, Config{Node: fakeNode{tc.m, tc.db, func() (Writes, error) { return tc.m, nil }, nil}, Swarm: fakeSwarm{}}, time.Nanosecond)
	ctx := context.Background()
	_, err := c.SwarmJoin(ctx, api.SwarmJoin{RemoteAddr: "192.168.33.10", Token: tc.m.State().WorkerToken})
	if err == nil || err.Error() != api.ErrAlreadyInSwarm.Error() {
		t.Errorf("swarm join past the write timeout: %v, want the fake's answer %q", err, api.ErrAlreadyInSwarm)
	}
	if _, err := c.Info(ctx); err == nil {
		t.Error("info past the write timeout answered; the test's timeout does not bite")
	}
}

// TestRefusedRequestsAreLoggedOncePerHost checks the log of refused
// cluster requests: a host refused a hundred times is one line, another
// host gets its own.
func TestRefusedRequestsAreLoggedOncePerHost(t *testing.T) {
	var buf bytes.Buffer
	srv, err := New(Config{Node: fakeNode{}, Swarm: fakeSwarm{}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r := httptest.NewRequest(http.MethodPost, "/v1/networks", nil)
		r.RemoteAddr = "10.0.0.9:" + string(rune('0'+i%10)) + "000"
		srv.refused(r, errors.New("a node certificate of this cluster is required"))
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/cluster/join", nil)
	r.RemoteAddr = "10.0.0.10:4000"
	srv.refused(r, errors.New("request time is 10m0s off the manager's clock"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "remote=10.0.0.9:0000") || !strings.Contains(lines[1], "remote=10.0.0.10:4000") {
		t.Errorf("log:\n%s\nwant one line for 10.0.0.9 and one for 10.0.0.10", buf.String())
	}
}
