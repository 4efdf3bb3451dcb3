package agent

import (
	"errors"

	"github.com/meshd/meshd/lb"
)

// growConntrack keeps the kernel's conntrack table at least
// cfg.ConntrackMax (lb.GrowConntrack): once conntrack is loaded, then at
// each resync tick, as ensureGateway checks mesh_gwbridge, so a table
// someone shrank is raised again and a wake-up from the tables reads no
// /proc. A raise is logged each time; a refusal once per reason: a lab's
// node, whose namespace may not size the host's table, says so at its
// start and is quiet after.
func (a *Agent) growConntrack() {
	if a.cfg.ConntrackMax == 0 || a.ctChecked {
		return
	}
	before, after, err := lb.GrowConntrack(a.cfg.Sysctls(""), a.cfg.ConntrackMax)
	if errors.Is(err, lb.ErrNoConntrack) {
		return // loaded by the first NAT rule; the next pass sees it
	}
	a.ctChecked = true
	if after != before {
		a.log.Info("conntrack table raised", "from", before.String(), "to", after.String())
	}
	note := ""
	if err != nil {
		note = err.Error()
	}
	if note != a.conntrack && note != "" {
		level := a.log.Warn
		if errors.Is(err, lb.ErrConntrackReadOnly) {
			level = a.log.Info
		}
		level("conntrack table not raised", "size", after.String(), "want_max", a.cfg.ConntrackMax, "reason", note)
	}
	a.conntrack = note
}
