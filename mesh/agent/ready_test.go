package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

func TestProcListening(t *testing.T) {
	// /proc/<pid>/net/tcp as the kernel writes it: 0.0.0.0:80 listening,
	// 127.0.0.1:8080 established.
	tcp := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
`)
	udp := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 0
`)
	tests := []struct {
		table []byte
		port  uint16
		udp   bool
		want  bool
	}{
		{tcp, 80, false, true},
		{tcp, 8080, false, false}, // established, not listening
		{tcp, 443, false, false},
		{udp, 53, true, true},
		{udp, 80, true, false},
		{[]byte("garbage\n1: x y\n"), 80, false, false},
		{nil, 80, false, false},
	}
	for _, tt := range tests {
		if got := procListening(tt.table, tt.port, tt.udp); got != tt.want {
			t.Errorf("port %d udp %v: %v, want %v", tt.port, tt.udp, got, tt.want)
		}
	}
}

// TestBackendAnnouncedOnceListening starts a task whose process does not
// listen on its target port yet: its backend is not announced (no request
// may reach it) until it does.
func TestBackendAnnouncedOnceListening(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	f.mu.Lock()
	f.deaf = true
	f.mu.Unlock()
	if _, err := f.mgr.CreateService(f.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(2),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	local := f.tasks("www")["node1id"]
	ingress := f.netID(api.IngressName)
	f.reconcile()
	testutil.Eventually(t, 5*time.Second, "www.1 running", func() error {
		if !slices.Contains(f.runner.Running(), local.ID) {
			return fmt.Errorf("running %v", f.runner.Running())
		}
		return nil
	})
	// The agent looks at the task's sockets several times and finds no
	// listener: the backend stays out of the tables.
	testutil.Eventually(t, 5*time.Second, "three looks at the task's sockets", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.listenChecks < 3 {
			return fmt.Errorf("%d looks", f.listenChecks)
		}
		return nil
	})
	if records.HasEndpoint(f.db, ingress, local.ID) {
		t.Fatal("the backend was announced before its process listened")
	}
	f.mu.Lock()
	f.deaf = false
	f.mu.Unlock()
	testutil.Eventually(t, 5*time.Second, "www.1 announced once it listens", func() error {
		if !records.HasEndpoint(f.db, ingress, local.ID) {
			return fmt.Errorf("endpoints %v", records.Endpoints(f.db, records.AllNetworks))
		}
		return nil
	})
}
