package mesh

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/metrics"
)

// newMetrics returns the daemon's metrics when --metrics-addr asks for
// them, else nil: every user of a nil *metrics.Metrics records nothing.
func (d *Daemon) newMetrics() *metrics.Metrics {
	if !d.cfg.MetricsAddr.IsValid() {
		return nil
	}
	return metrics.New(metrics.Config{RulesRebuilt: lb.RulesRebuilt, GossipMembers: func() int {
		// Not under d.mu: a join holds it for seconds, a scrape must not wait.
		if db := d.gossip.Load(); db != nil {
			return db.NumAlive()
		}
		return 0
	}})
}

// serveMetrics answers GET /metrics on --metrics-addr until ctx ends.
func (d *Daemon) serveMetrics(ctx context.Context, wg *sync.WaitGroup) error {
	ln, err := net.Listen("tcp", d.cfg.MetricsAddr.String())
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", d.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	log := d.log.With("component", "metrics")
	goServe(ctx, wg, log, newHTTPServer(mux, log), ln, "metrics")
	d.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}
