package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/kwatch"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// scrape is what GET /metrics shows of the node's metrics.
func (f *fakeNode) scrape() testutil.Scrape {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return testutil.ParseScrape(f.t, string(body))
}

// value is one sample of the node's metrics, 0 when it has none.
func (f *fakeNode) value(name string, labels ...string) float64 {
	v, _ := f.scrape().Value(name, labels...)
	return v
}

// TestMetrics follows one task of www on this node: started, programmed,
// its rules synced at every pass, its links repaired on the kernel's
// report, its resolver answering.
func TestMetrics(t *testing.T) {
	e := driftNodeEnv(t)
	f := e.f
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{name: "meshd_tasks_started_total", want: 1},
		{name: "meshd_service_backends", labels: []string{"service", "www"}, want: 1},
		{name: "meshd_network_programming_duration_seconds", want: 1},
		{name: "meshd_drift_repairs_total", labels: []string{"kind", "links"}, want: 0},
	}
	for _, c := range checks {
		if got := f.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	syncs := f.value("meshd_sync_proxy_rules_duration_seconds")
	f.notify(e.task.sandbox, kwatch.Stack) // nothing to repair: the agent's own change, say
	f.agent.Reconcile(f.ctx)
	if got := f.value("meshd_sync_proxy_rules_duration_seconds"); got != syncs+1 {
		t.Errorf("rule syncs after one more pass: got %v, want %v", got, syncs+1)
	}
	if got := f.value("meshd_drift_repairs_total", "kind", "links"); got != 0 {
		t.Errorf("link repairs after a report with nothing changed: got %v, want 0", got)
	}
	if err := f.kernel.RemoveLink(e.task.sandbox, "eth0"); err != nil {
		t.Fatal(err)
	}
	f.notify(e.task.sandbox, kwatch.Stack)
	f.agent.Reconcile(f.ctx)
	if got := f.value("meshd_drift_repairs_total", "kind", "links"); got != 1 {
		t.Errorf("link repairs after eth0 was deleted: got %v, want 1", got)
	}
	if got := f.value("meshd_network_programming_duration_seconds"); got != 1 {
		t.Errorf("programming observations after another pass: got %v, want still 1", got)
	}

	if got := f.resolve(e.task.sandbox, "www."); len(got) != 1 {
		t.Fatalf("www resolves to %v, want its VIP", got)
	}
	if got := f.value("meshd_dns_queries_total", "rcode", "NOERROR"); got != 1 {
		t.Errorf("dns queries answered NOERROR: got %v, want 1", got)
	}

	if err := f.mgr.RemoveService(f.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	f.clock = f.clock.Add(time.Hour) // past any drain
	f.reconcile()
	f.reconcile()
	if s := f.scrape().Series("meshd_service_backends"); len(s) != 0 {
		t.Errorf("service_backends after service rm: %v, want no series", s)
	}
}

// TestProgrammingTime: the time from Running to programmed is measured
// once per task, only for tasks that started after the agent, and only
// once the task's status says Running.
func TestProgrammingTime(t *testing.T) {
	f := newFakeNode(t, lb.ModeIPTables)
	now := time.Now()
	f.agent.started = now.Add(-time.Minute)
	status := func(id, state string, at time.Time) {
		if err := records.PutTaskStatus(f.db, id, api.TaskStatus{State: state}, at); err != nil {
			t.Fatal(err)
		}
	}
	status("fresh", api.TaskRunning, now.Add(-200*time.Millisecond))
	status("before", api.TaskRunning, f.agent.started.Add(-time.Second)) // older than this agent
	status("late", "starting", now)                                      // its Running not gossiped yet
	ep := func(id string, draining bool) records.EndpointEntry {
		return records.EndpointEntry{Network: "ov", TaskID: id, Owner: "node2id",
			Endpoint: records.Endpoint{Service: "www", ServiceID: "wwwid", Draining: draining}}
	}
	eps := []records.EndpointEntry{ep("fresh", false), ep("before", false), ep("late", false), ep("leaving", true)}
	synced := map[string]bool{"ov": true}
	sampleSum := func() float64 {
		return f.scrape()["meshd_network_programming_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	}

	f.agent.reportProgrammed(eps, synced)
	if got := f.value("meshd_network_programming_duration_seconds"); got != 1 {
		t.Fatalf("observations: got %v, want 1 (fresh only)", got)
	}
	if got := sampleSum(); got < 0.2 || got > 60 {
		t.Errorf("fresh took %vs, want 0.2s and a little more", got)
	}
	if got := f.value("meshd_service_backends", "service", "www"); got != 3 {
		t.Errorf("backends of www: got %v, want 3 (the draining one left out)", got)
	}
	f.agent.reportProgrammed(eps, synced)
	if got := f.value("meshd_network_programming_duration_seconds"); got != 1 {
		t.Errorf("observations after a second pass: got %v, want still 1", got)
	}
	status("late", api.TaskRunning, now)
	f.agent.reportProgrammed(eps, synced)
	if got := f.value("meshd_network_programming_duration_seconds"); got != 2 {
		t.Errorf("observations once late's Running arrived: got %v, want 2", got)
	}
}
