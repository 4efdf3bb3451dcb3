package agent

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/meshd/meshd/lb"
)

// hostTable is one of the kernel's tables, one for the machine, that the
// agent keeps large enough for the mesh.
type hostTable struct {
	checked bool   // its size is known since the last resync tick
	refused string // why it was not raised, as last logged
}

// growHostTables keeps the kernel's conntrack table at least
// cfg.ConntrackMax (lb.GrowConntrack), once conntrack is loaded, and its
// neighbour table's limit at least cfg.NeighbourMax (lb.GrowNeighbours);
// then again at each resync tick, as ensureGateway checks mesh_gwbridge,
// so a table someone shrank is raised again and a wake-up from the
// tables reads no /proc. A raise is logged each time; a refusal once per
// reason: a lab's node, whose namespace may not size the host's tables,
// says so at its start and is quiet after.
func (a *Agent) growHostTables() {
	if a.cfg.ConntrackMax != 0 && !a.conntrack.checked {
		before, after, err := lb.GrowConntrack(a.cfg.Sysctls(""), a.cfg.ConntrackMax)
		if !errors.Is(err, lb.ErrNoConntrack) { // else loaded by the first NAT rule; the next pass sees it
			a.conntrack.sized(a.log, "conntrack table", before, after, err, lb.ErrConntrackReadOnly, "want_max", a.cfg.ConntrackMax)
		}
	}
	if a.cfg.NeighbourMax != 0 && !a.neighbours.checked {
		before, after, err := lb.GrowNeighbours(a.cfg.Sysctls(""), a.cfg.NeighbourMax)
		a.neighbours.sized(a.log, "neighbour table", before, after, err, lb.ErrNeighboursNotHere, "want_gc_thresh3", a.cfg.NeighbourMax)
	}
}

// sized logs what a grow did: a raise, and a refusal unless the same as
// the last one logged, at INFO where it is notHere (a lab's node).
func (t *hostTable) sized(log *slog.Logger, name string, before, after fmt.Stringer, err, notHere error, want ...any) {
	t.checked = true
	if before.String() != after.String() {
		log.Info(name+" raised", "from", before.String(), "to", after.String())
	}
	note := ""
	if err != nil {
		note = err.Error()
	}
	if note != t.refused && note != "" {
		level := log.Warn
		if errors.Is(err, notHere) {
			level = log.Info
		}
		level(name+" not raised", append(append([]any{"size", after.String()}, want...), "reason", note)...)
	}
	t.refused = note
}
