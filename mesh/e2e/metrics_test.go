package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
)

// metricsPort is where the lab's meshds serve /metrics in these tests:
// Docker's, on every address of each node's own namespace.
const metricsPort = "9323"

// scrape fetches /metrics with curl from where "lab exec from" runs.
func (l *testLab) scrape(t *testing.T, from, host string) testutil.Scrape {
	t.Helper()
	out, err := l.onNode(from, "curl", "-sSf", "-m", "5", "http://"+host+":"+metricsPort+"/metrics")
	if err != nil {
		t.Fatalf("scrape %s from %s: %v\n%s", host, from, err, out)
	}
	return testutil.ParseScrape(t, out)
}

// TestMetrics scrapes node1's /metrics before a service create and while
// it converges: its agent's rule syncs go on (the sync histogram's count
// grows), it balances to both tasks of www, and it measured their
// programming. node2's metrics are scraped from the client, at its
// underlay address: each node serves its own.
func TestMetrics(t *testing.T) {
	testutil.RequireRoot(t) // -short skips before looking for curl
	testutil.RequireTool(t, "curl")
	l := newLabWith(t, 2, "--meshd-flag=--metrics-addr=0.0.0.0:"+metricsPort)
	const syncs = "meshd_sync_proxy_rules_duration_seconds"
	before := l.scrape(t, "node1", "127.0.0.1")
	syncsBefore, ok := before.Value(syncs)
	if !ok {
		t.Fatalf("node1 exports no %s; families: %d", syncs, len(before))
	}
	if n, _ := before.Value("meshd_service_backends", "service", "www"); n != 0 {
		t.Fatalf("www has %v backends before it exists", n)
	}

	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "ovnet")
	l.must(t, "--node", "node1", "service", "create", "-d", "--name", "www", "--replicas", "2", "--network", "ovnet",
		"--publish", "8888:80", "whoami")
	var during testutil.Scrape
	eventually(t, 20*time.Second, "node1's metrics show www's two backends, programmed", func() (bool, string) {
		during = l.scrape(t, "node1", "127.0.0.1")
		backends, _ := during.Value("meshd_service_backends", "service", "www")
		programmed, _ := during.Value("meshd_network_programming_duration_seconds")
		return backends == 2 && programmed == 2, fmt.Sprintf("service_backends %v, network_programming observations %v",
			during.Series("meshd_service_backends"), programmed)
	})
	if n, _ := during.Value(syncs); n <= syncsBefore {
		t.Errorf("%s_count: %v before the service create, %v after it: want it to advance", syncs, syncsBefore, n)
	}
	if n, _ := during.Value("meshd_gossip_members"); n != 2 {
		t.Errorf("gossip members seen by node1: got %v, want 2", n)
	}
	// node2's task reported Running, and node1 programmed it: its status
	// came to node1 by gossip.
	if n, _ := during.Value("meshd_gossip_convergence_seconds"); n < 1 {
		t.Errorf("gossip convergence observations on node1: got %v, want node2's task statuses", n)
	}

	var node2 testutil.Scrape
	eventually(t, 10*time.Second, "node2's metrics, scraped from the client, show www's two backends", func() (bool, string) {
		node2 = l.scrape(t, "client", "192.168.33.11")
		n, _ := node2.Value("meshd_service_backends", "service", "www")
		return n == 2, fmt.Sprint(node2.Series("meshd_service_backends"))
	})
	started := 0.0
	for _, s := range []testutil.Scrape{during, node2} {
		n, _ := s.Value("meshd_tasks_started_total")
		started += n
	}
	if started != 2 {
		t.Errorf("tasks started on node1 and node2: %v in all, want 2 (www's replicas)", started)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := node2.Value(name); !ok {
			t.Errorf("node2 exports no %s", name)
		}
	}
	out, _ := l.onNode("client", "curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://192.168.33.10:"+metricsPort+"/")
	if strings.TrimSpace(out) != "404" {
		t.Errorf("GET / on the metrics port: %q, want 404 (only /metrics is served)", out)
	}
}
