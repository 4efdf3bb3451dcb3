package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/internal/testutil"
)

// scrape is one GET /metrics of h.
func scrape(t *testing.T, h http.Handler) testutil.Scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	return testutil.ParseScrape(t, string(body))
}

// TestNilRecordsNothing: code run without metrics passes a nil *Metrics.
func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.ObserveRuleSync(time.Second)
	m.ObserveProgramming(time.Second)
	m.LinkRepair()
	m.SetServiceBackends(map[string]int{"www": 2})
	m.TaskStarted(true)
	m.ObserveGossipConvergence(time.Second)
	if obs := m.DNSObserver(); obs != nil {
		t.Error("DNSObserver of nil metrics is not nil: the DNS would time queries for nothing")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil metrics served %d, want 404", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	rebuilt := uint64(7)
	m := New(Config{GossipMembers: func() int { return 3 }, RulesRebuilt: func() uint64 { return rebuilt }})
	m.ObserveRuleSync(20 * time.Millisecond)
	m.ObserveRuleSync(30 * time.Millisecond)
	m.ObserveProgramming(50 * time.Millisecond)
	m.ObserveProgramming(-time.Second) // clocks apart: dropped
	m.LinkRepair()
	m.LinkRepair()
	m.TaskStarted(false)
	m.TaskStarted(true)
	m.ObserveGossipConvergence(30 * time.Millisecond)
	m.ObserveGossipConvergence(-time.Second) // clocks apart: dropped
	obs := m.DNSObserver()
	obs("NOERROR", time.Millisecond)
	obs("NOERROR", time.Millisecond)
	obs("NXDOMAIN", 2*time.Millisecond)
	m.SetServiceBackends(map[string]int{"www": 2, "db": 1})
	m.SetServiceBackends(map[string]int{"www": 3}) // db removed

	s := scrape(t, m.Handler())
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{name: "meshd_sync_proxy_rules_duration_seconds", want: 2},
		{name: "meshd_network_programming_duration_seconds", want: 1},
		{name: "meshd_drift_repairs_total", labels: []string{"kind", "rules"}, want: 7},
		{name: "meshd_drift_repairs_total", labels: []string{"kind", "links"}, want: 2},
		{name: "meshd_service_backends", labels: []string{"service", "www"}, want: 3},
		{name: "meshd_gossip_members", want: 3},
		{name: "meshd_dns_queries_total", labels: []string{"rcode", "NOERROR"}, want: 2},
		{name: "meshd_dns_queries_total", labels: []string{"rcode", "NXDOMAIN"}, want: 1},
		{name: "meshd_dns_query_duration_seconds", want: 3},
		{name: "meshd_tasks_started_total", want: 2},
		{name: "meshd_task_restarts_total", want: 1},
		{name: "meshd_gossip_convergence_seconds", want: 1},
	}
	for _, tt := range tests {
		got, ok := s.Value(tt.name, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%v: got %v (found %v), want %v; series: %v", tt.name, tt.labels, got, ok, tt.want, s.Series(tt.name))
		}
	}
	if diff := cmp.Diff([]string{"service=www"}, s.Series("meshd_service_backends")); diff != "" {
		t.Errorf("service_backends series (-want +got):\n%s", diff)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := s.Value(name); !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
	// The funcs are read at each scrape.
	rebuilt = 8
	if got, _ := scrape(t, m.Handler()).Value("meshd_drift_repairs_total", "kind", "rules"); got != 8 {
		t.Errorf("drift_repairs_total{kind=rules} after a rebuild: got %v, want 8", got)
	}
}

// TestHelpAndNames: every metric of ours says what it measures and is
// named meshd_*.
func TestHelpAndNames(t *testing.T) {
	s := scrape(t, New(Config{}).Handler())
	var ours []string
	for name, fam := range s {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			continue
		}
		ours = append(ours, name)
		if !strings.HasPrefix(name, "meshd_") {
			t.Errorf("%s: want the meshd_ prefix", name)
		}
		if len(fam.GetHelp()) < 40 {
			t.Errorf("%s: HELP %q says too little", name, fam.GetHelp())
		}
	}
	slices.Sort(ours)
	// Vectors show no series before their first value.
	want := []string{"meshd_drift_repairs_total", "meshd_gossip_members", "meshd_network_programming_duration_seconds",
		"meshd_sync_proxy_rules_duration_seconds", "meshd_dns_query_duration_seconds", "meshd_tasks_started_total",
		"meshd_task_restarts_total", "meshd_gossip_convergence_seconds"}
	slices.Sort(want)
	if diff := cmp.Diff(want, ours); diff != "" {
		t.Errorf("metric families of a fresh meshd (-want +got):\n%s", diff)
	}
}
