package manager

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// BenchmarkIdleSync times the leader's periodic sync (syncNodes, once a
// second) on a cluster of three nodes and 1000 published services
// without tasks, when nothing has changed: what an idle manager spends
// each second to learn that. "computed" runs the sync's checks on a copy
// of the state, as the first sync after any change does; "skipped" is a
// sync whose inputs have not moved since one that changed nothing (see
// quietSync).
//
//	go test -run '^$' -bench IdleSync ./mesh/manager/
func BenchmarkIdleSync(b *testing.B) {
	d := managerWithServices(b)
	now := time.Now().UTC()
	d.syncNodes(now)
	v := d.store.Version()
	for _, skipped := range []bool{false, true} {
		b.Run(map[bool]string{false: "computed", true: "skipped"}[skipped], func(b *testing.B) {
			for range b.N {
				if !skipped {
					d.quiet = quietSync{}
				}
				d.syncNodes(now)
			}
		})
	}
	if got := d.store.Version(); got != v {
		b.Fatalf("an idle sync wrote: version %d, was %d", got, v)
	}
}

// BenchmarkWriteAt1000 times a write on a state of 1000 published
// services: one op creates a published service and removes it, two
// writes, each replicated through raft and applied.
//
//	go test -run '^$' -bench WriteAt1000 ./mesh/manager/
func BenchmarkWriteAt1000(b *testing.B) {
	d := managerWithServices(b)
	b.ResetTimer()
	for i := range b.N {
		svc, err := d.CreateService(d.ctx, api.ServiceCreate{Name: fmt.Sprintf("extra%d", i), Image: "whoami",
			Replicas: replicas(0), Ports: []api.PortConfig{{PublishedPort: 30000, TargetPort: 80}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.RemoveService(d.ctx, svc.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// managerWithServices is a manager of three nodes holding 1000 published
// services without tasks.
func managerWithServices(b *testing.B) *fakeManager {
	d := newFakeManager(b)
	for i := range 1000 {
		_, err := d.CreateService(d.ctx, api.ServiceCreate{Name: fmt.Sprintf("svc%d", i), Image: "whoami",
			Replicas: replicas(0), Ports: []api.PortConfig{{PublishedPort: uint16(20000 + i), TargetPort: 80}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	return d
}
