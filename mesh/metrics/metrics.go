// Package metrics is meshd's Prometheus instrumentation: every metric the
// daemon exports is defined here, on a registry of its own, and served in
// the text format by [Metrics.Handler] (meshd --metrics-addr).
//
// The other packages see only the small methods below. They are nil-safe:
// a nil *Metrics records nothing, so code and tests that run without
// metrics pass nil and need no branches. Libraries (lb, gossip) know
// nothing of Prometheus: what they count is read through the funcs of
// [Config] when a scrape asks.
//
// The names follow kube-proxy's where one measures the same thing
// (sync_proxy_rules_duration_seconds, network_programming_duration_seconds),
// prefixed meshd_. Label sets are small and bounded: a drift kind, a DNS
// rcode (16 at most), a service name (the services this node balances to).
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "meshd"

// Config is what [New] reads on each scrape. Nil funcs export 0.
type Config struct {
	// GossipMembers returns how many gossip members this node sees alive,
	// itself included; 0 in no cluster. Called on every scrape: it must
	// not block.
	GossipMembers func() int
	// RulesRebuilt returns how many times rules that drifted were rebuilt
	// since the process started (lb.RulesRebuilt).
	RulesRebuilt func() uint64
}

// Metrics holds meshd's metrics. Its methods may be called from any
// goroutine, and on a nil *Metrics, where they do nothing.
type Metrics struct {
	reg          *prometheus.Registry
	ruleSync     prometheus.Histogram
	programming  prometheus.Histogram
	linkRepairs  atomic.Uint64
	backends     *prometheus.GaugeVec
	dnsQueries   *prometheus.CounterVec
	dnsDuration  prometheus.Histogram
	tasksStarted prometheus.Counter
	taskRestarts prometheus.Counter
	// gossipConvergence: see ObserveGossipConvergence.
	gossipConvergence prometheus.Histogram

	mu       sync.Mutex // guards the field below
	services map[string]bool
}

// driftHelp is shared by both kinds: series of one name must have one HELP.
const driftHelp = "Repairs of kernel state that drifted from what meshd had applied. " +
	"kind=\"rules\": iptables chains (host, load-balancer sandboxes, tasks, bridges) found no longer as applied " +
	"at a periodic or kernel-triggered check and rebuilt (a first sync or the retry after a failed one is not counted). " +
	"kind=\"links\": a task's links (its veths on overlays and mesh_gwbridge) found deleted or altered after the kernel " +
	"reported a change in its namespace, and made again: one per task and repair pass that changed them."

// New returns the metrics, registered with the Go and process collectors
// on a registry of their own. cfg must not change afterwards.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ruleSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sync_proxy_rules_duration_seconds",
			Help: "Time one reconcile pass of the node agent spent bringing the load-balancing rules in step: " +
				"every sandbox's data plane (iptables and IPVS), the host's and the tasks' rules, " +
				"as kube-proxy's sync_proxy_rules_duration_seconds. One observation per pass.",
			// kube-proxy's: 1 ms to 16 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		programming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "network_programming_duration_seconds",
			Help: "Time from a task's Running status (stamped by the node that runs it, in the task_status table) " +
				"to this node reporting it programmed: its backend in this node's balancers, whose sandbox is in step. " +
				"It includes the wait for the task to listen on its target ports, as backends are announced only then. " +
				"Observed once per newly programmed task; tasks that started before this meshd are left out. " +
				"Across nodes it depends on their clocks agreeing. As kube-proxy's network_programming_duration_seconds.",
			// 5 ms to 41 s: gossip spreads a change in well under a second.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		backends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "service_backends",
			Help: "Backends (tasks, not draining) this node's balancers send a service's traffic to, " +
				"as last reported programmed, by service name; a service with none here has no series.",
		}, []string{"service"}),
		dnsQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dns_queries_total",
			Help: "Queries the embedded DNS (127.0.0.11 in tasks and containers) answered, by the answer's rcode; " +
				"dropped queries (no answer sent) are not counted.",
		}, []string{"rcode"}),
		dnsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "dns_query_duration_seconds",
			Help: "Time the embedded DNS took from reading a query to its answer being ready to send, " +
				"local and forwarded answers alike.",
			// 0.1 ms (a local answer) to 6.5 s (an upstream timing out).
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		tasksStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "tasks_started_total",
			Help: "Task processes the node agent started and saw running on this node (a restart by the " +
				"restart policy is a new task, so it counts again).",
		}),
		taskRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "task_restarts_total",
			Help: "Tasks started on this node that replace an ended task of their slot, as the service's " +
				"restart policy asks (a new task for a slot that had restarts before it).",
		}),
		gossipConvergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "gossip_convergence_seconds",
			Help: "Time from another node stamping a task's status (in the task_status table) to this node " +
				"receiving it by gossip: the spread of a change, sampled at every task state change. " +
				"Statuses stamped before this meshd started are left out; across nodes it depends on their clocks agreeing.",
			// 1 ms to 16 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		services: map[string]bool{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ruleSync, m.programming, m.backends, m.dnsQueries, m.dnsDuration, m.tasksStarted, m.taskRestarts, m.gossipConvergence)
	m.reg.MustRegister(m.funcs(cfg)...)
	return m
}

// funcs are the metrics whose values are read at each scrape.
func (m *Metrics) funcs(cfg Config) []prometheus.Collector {
	members := func() float64 { return 0 }
	if cfg.GossipMembers != nil {
		members = func() float64 { return float64(cfg.GossipMembers()) }
	}
	rulesRebuilt := func() float64 { return 0 }
	if cfg.RulesRebuilt != nil {
		rulesRebuilt = func() float64 { return float64(cfg.RulesRebuilt()) }
	}
	drift := func(kind string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: namespace, Name: "drift_repairs_total", Help: driftHelp,
			ConstLabels: prometheus.Labels{"kind": kind}}
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "gossip_members",
			Help: "Gossip members this node sees alive, itself included; 0 while it is in no cluster.",
		}, members),
		prometheus.NewCounterFunc(drift("rules"), rulesRebuilt),
		prometheus.NewCounterFunc(drift("links"), func() float64 { return float64(m.linkRepairs.Load()) }),
	}
}

// Handler serves the metrics in Prometheus' text format; nil serves 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRuleSync records one reconcile pass's rule sync time.
func (m *Metrics) ObserveRuleSync(d time.Duration) {
	if m == nil {
		return
	}
	m.ruleSync.Observe(d.Seconds())
}

// ObserveProgramming records how long a newly programmed task took from
// running to programmed here. A negative d (clocks apart) is dropped.
func (m *Metrics) ObserveProgramming(d time.Duration) {
	if m == nil || d < 0 {
		return
	}
	m.programming.Observe(d.Seconds())
}

// LinkRepair counts one repair of a task's links.
func (m *Metrics) LinkRepair() {
	if m == nil {
		return
	}
	m.linkRepairs.Add(1)
}

// SetServiceBackends replaces the backends per service name: services
// missing from byName lose their series, so a removed service does not
// linger.
func (m *Metrics) SetServiceBackends(byName map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.services {
		if _, ok := byName[name]; !ok {
			m.backends.DeleteLabelValues(name)
		}
	}
	m.services = make(map[string]bool, len(byName))
	for name, n := range byName {
		m.backends.WithLabelValues(name).Set(float64(n))
		m.services[name] = true
	}
}

// TaskStarted counts one task process started, and a restart if the task
// replaces an ended one of its slot.
func (m *Metrics) TaskStarted(restart bool) {
	if m == nil {
		return
	}
	m.tasksStarted.Inc()
	if restart {
		m.taskRestarts.Inc()
	}
}

// ObserveGossipConvergence records how long a change written on another
// node took to arrive here. A negative d (clocks apart) is dropped.
func (m *Metrics) ObserveGossipConvergence(d time.Duration) {
	if m == nil || d < 0 {
		return
	}
	m.gossipConvergence.Observe(d.Seconds())
}

// DNSObserver returns the embedded DNS's observer (dns.Config.Observe):
// it counts a query by rcode ("NOERROR", "NXDOMAIN", …) and records how
// long its answer took. Nil on a nil *Metrics, so that the DNS does not
// time its queries for nothing.
func (m *Metrics) DNSObserver() func(rcode string, took time.Duration) {
	if m == nil {
		return nil
	}
	return func(rcode string, took time.Duration) {
		m.dnsQueries.WithLabelValues(rcode).Inc()
		m.dnsDuration.Observe(took.Seconds())
	}
}
