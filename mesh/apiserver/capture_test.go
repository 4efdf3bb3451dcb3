package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/capture"
	"github.com/meshd/meshd/mesh/records"
	"golang.org/x/net/bpf"
)

// captureClient serves a node (node2, whose run dir has ingress_sbox)
// that captures on the fake sockets of op.
func captureClient(t *testing.T, op capture.Opener) *api.Client {
	t.Helper()
	node := fakeNode{db: records.NewFakeDB("w2")}
	return serveLocal(t, Config{Node: node, Swarm: fakeSwarm{}, Capture: op}, time.Minute)
}

// TestCaptureStream: the sockets open in the namespaces the hops name,
// the stream says so first, carries each packet with its hop, and ends
// with the counts when the count is reached.
func TestCaptureStream(t *testing.T) {
	host, sbox := capture.NewFakeSource(), capture.NewFakeSource()
	host.Counts = capture.Stats{Received: 3, Dropped: 1}
	op := &capture.FakeOpener{Sources: map[[2]string]*capture.FakeSource{{"", "eth0"}: host, {"/run/x/ingress_sbox", "eth1"}: sbox}}
	c := captureClient(t, op)
	req := api.CaptureRequest{
		Hops:   []api.CaptureHop{{Interface: "eth0"}, {Namespace: "ingress_sbox", Interface: "eth1"}},
		Filter: []api.BPFInstruction{{Op: 6, K: 96}}, SnapLen: 96, Count: 2,
	}
	t0 := time.Unix(1700000000, 5).UTC()
	var got []api.CaptureRecord
	err := c.Capture(context.Background(), req, func(rec api.CaptureRecord) error {
		got = append(got, rec)
		if rec.Listening != nil { // the sockets are open: traffic now shows
			host.C <- capture.Packet{Time: t0, Length: 60, Data: []byte{1, 2}}
			sbox.C <- capture.Packet{Time: t0.Add(time.Millisecond), Length: 70, Data: []byte{3}}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d records, want Listening, 2 packets, End: %+v", len(got), got)
	}
	want := []api.CaptureListening{
		{Hop: 0, Interface: "eth0", LinkType: 1, SnapLen: 96},
		{Hop: 1, Namespace: "/run/x/ingress_sbox", Interface: "eth1", LinkType: 1, SnapLen: 96},
	}
	if diff := cmp.Diff(want, got[0].Listening); diff != "" {
		t.Errorf("Listening (-want +got):\n%s", diff)
	}
	pkts := map[int]api.CapturedPacket{got[1].Packet.Hop: *got[1].Packet, got[2].Packet.Hop: *got[2].Packet}
	wantPkts := map[int]api.CapturedPacket{
		0: {Hop: 0, Time: t0, Length: 60, Data: []byte{1, 2}},
		1: {Hop: 1, Time: t0.Add(time.Millisecond), Length: 70, Data: []byte{3}},
	}
	if diff := cmp.Diff(wantPkts, pkts); diff != "" {
		t.Errorf("packets by hop (-want +got):\n%s", diff)
	}
	wantEnd := &api.CaptureEnd{Reason: capture.EndCount, Hops: []api.CaptureStats{{Hop: 0, Received: 3, Dropped: 1}, {Hop: 1}}}
	if diff := cmp.Diff(wantEnd, got[3].End); diff != "" {
		t.Errorf("End (-want +got):\n%s", diff)
	}
	wantFilter := []bpf.RawInstruction{{Op: 6, K: 96}}
	for _, o := range op.Opened {
		if o.SnapLen != 96 || !cmp.Equal(o.Filter, wantFilter) {
			t.Errorf("opened %s with snaplen %d and filter %v, want 96 and %v", o.Interface, o.SnapLen, o.Filter, wantFilter)
		}
	}
	if !host.Closed() || !sbox.Closed() {
		t.Error("a socket was left open")
	}
}

func TestCaptureRefusals(t *testing.T) {
	src := capture.NewFakeSource()
	op := &capture.FakeOpener{Sources: map[[2]string]*capture.FakeSource{{"", "eth0"}: src}}
	c := captureClient(t, op)
	eth0 := api.CaptureHop{Interface: "eth0"}
	tests := []struct {
		name string
		req  api.CaptureRequest
		code int
		err  string
	}{
		{name: "no hop", code: http.StatusBadRequest, err: "no hop"},
		{name: "unknown namespace", req: api.CaptureRequest{Hops: []api.CaptureHop{{Namespace: "lb_nope", Interface: "eth0"}}},
			code: http.StatusNotFound, err: `no namespace or task "lb_nope" on node2`},
		{name: "unknown interface", req: api.CaptureRequest{Hops: []api.CaptureHop{eth0, {Namespace: "ingress_sbox", Interface: "eth9"}}},
			code: http.StatusNotFound, err: `no interface "eth9" in "ingress_sbox"`},
		{name: "snaplen", req: api.CaptureRequest{Hops: []api.CaptureHop{eth0}, SnapLen: api.MaxSnapLen + 1},
			code: http.StatusBadRequest, err: "snapshot length"},
		{name: "duration", req: api.CaptureRequest{Hops: []api.CaptureHop{eth0}, Duration: 2 * time.Hour},
			code: http.StatusBadRequest, err: "duration 2h0m0s: at most 1h0m0s"},
		{name: "filter", req: api.CaptureRequest{Hops: []api.CaptureHop{eth0}, Filter: make([]api.BPFInstruction, api.MaxBPFInstructions+1)},
			code: http.StatusBadRequest, err: "filter of 4097 instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Capture(context.Background(), tt.req, func(api.CaptureRecord) error { return nil })
			if api.StatusCode(err) != tt.code || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("got %v (%d), want %d with %q", err, api.StatusCode(err), tt.code, tt.err)
			}
		})
	}
	if !src.Closed() {
		t.Error("eth0's socket was left open when the next hop failed")
	}
	none := serveLocal(t, Config{Node: fakeNode{}, Swarm: fakeSwarm{}}, time.Minute)
	err := none.Capture(context.Background(), api.CaptureRequest{Hops: []api.CaptureHop{eth0}}, func(api.CaptureRecord) error { return nil })
	if api.StatusCode(err) != http.StatusNotImplemented {
		t.Errorf("without an opener: %v, want a 501", err)
	}
}

// TestCaptureEndsWithClient: a client that goes away ends the capture
// and closes its sockets.
func TestCaptureEndsWithClient(t *testing.T) {
	src := capture.NewFakeSource()
	op := &capture.FakeOpener{Sources: map[[2]string]*capture.FakeSource{{"", "eth0"}: src}}
	c := captureClient(t, op)
	ctx, cancel := context.WithCancel(context.Background())
	err := c.Capture(ctx, api.CaptureRequest{Hops: []api.CaptureHop{{Interface: "eth0"}}}, func(rec api.CaptureRecord) error {
		cancel()
		return nil
	})
	if err != nil {
		t.Fatalf("capture ended by its caller: %v, want nil", err)
	}
	testutil.Eventually(t, 5*time.Second, "the socket closed after the client went", func() error {
		if !src.Closed() {
			return errors.New("still open")
		}
		return nil
	})
}

// TestCaptureNotOnClusterPort: the cluster port, which any host reaches,
// has no capture route, whatever the caller's certificate.
func TestCaptureNotOnClusterPort(t *testing.T) {
	// A socket that opens: served, the request would answer 200.
	op := &capture.FakeOpener{Sources: map[[2]string]*capture.FakeSource{{"", "eth0"}: capture.NewFakeSource()}}
	srv, err := New(Config{Node: fakeNode{}, Swarm: fakeSwarm{}, Capture: op})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.mux(cluster).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/capture", strings.NewReader(`{"Hops":[{"Interface":"eth0"}],"Duration":1000000}`)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("POST /v1/capture on the cluster mux: %d, want 404", rec.Code)
	}
}
