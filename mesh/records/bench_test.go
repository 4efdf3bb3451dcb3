package records

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// BenchmarkServicesByName sorts 1000 services by name, as each
// reconcile does twice (the sandboxes' model and the host rules).
//
//	go test -run '^$' -bench ServicesByName ./mesh/records/
func BenchmarkServicesByName(b *testing.B) {
	var o Objects
	o.Init()
	for i := range 1000 {
		id := fmt.Sprintf("%025d", (i*7919)%1000)
		o.Services[id] = api.Service{ID: id, Name: fmt.Sprintf("svc%d", i), Image: "whoami", Env: []string{"A=1"}}
	}
	for range b.N {
		if got := o.ServicesByName(); len(got) != 1000 {
			b.Fatalf("%d services", len(got))
		}
	}
}

// thousandServices is a state of 1000 published services.
func thousandServices() Objects {
	var o Objects
	o.Init()
	for i := range 1000 {
		id := fmt.Sprintf("%025d", i)
		o.Services[id] = api.Service{ID: id, Name: fmt.Sprintf("svc%d", i), Image: "whoami", Env: []string{"A=1"},
			Endpoint: api.Endpoint{Ports: []api.PortConfig{{PublishedPort: uint16(20000 + i), TargetPort: 80}}}}
	}
	return o
}

// BenchmarkPublish times the leader's publish of a state of 1000 services
// already in the tables, as it runs every second: "same-version" when the
// state is the one it published last, "new-version" when its version
// moved but none of its objects did (every object encoded and compared).
//
//	go test -run '^$' -bench Publish ./mesh/records/
func BenchmarkPublish(b *testing.B) {
	for _, moved := range []bool{false, true} {
		name := map[bool]string{false: "same-version", true: "new-version"}[moved]
		b.Run(name, func(b *testing.B) {
			db, p, o := NewFakeDB("m1"), NewPublisher(), thousandServices()
			version := uint64(1)
			if err := p.Publish(db, o, version, ""); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if moved {
					version++
				}
				if err := p.Publish(db, o, version, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDesiredLook times a node's look at the desired state
// (Desired.Current) with 1000 services published: "unchanged" while the
// tables stay as they were, as between two changes; "moved" after a
// write to one of them (the head rewritten as it was), which lists and
// hashes the tables again; "ahead" after a service's entry came that
// its head does not count yet, which lists them and stops at the count.
//
//	go test -run '^$' -bench DesiredLook ./mesh/records/
func BenchmarkDesiredLook(b *testing.B) {
	db := NewFakeDB("m1")
	if err := NewPublisher().Publish(db, thousandServices(), 1, ""); err != nil {
		b.Fatal(err)
	}
	d, err := NewDesired(db, filepath.Join(b.TempDir(), "desired.json"))
	if err != nil {
		b.Fatal(err)
	}
	if got := d.Current(); len(got.Services) != 1000 {
		b.Fatalf("%d services served", len(got.Services))
	}
	h, _ := db.Get(TableCluster, "", HeadKey)
	for _, moved := range []bool{false, true} {
		name := map[bool]string{false: "unchanged", true: "moved"}[moved]
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if moved {
					if err := db.Put(TableCluster, "", HeadKey, h.Value); err != nil {
						b.Fatal(err)
					}
				}
				if got := d.Current(); len(got.Services) != 1000 || !d.Fresh() {
					b.Fatalf("%d services served, fresh %v", len(got.Services), d.Fresh())
				}
			}
		})
	}
	// A service's entry ahead of the head that counts it.
	b.Run("ahead", func(b *testing.B) {
		for i := range b.N {
			if err := db.Put(TableServices, "", "ahead", fmt.Appendf(nil, `{"ID":"ahead","Name":"a%d"}`, i)); err != nil {
				b.Fatal(err)
			}
			if got := d.Current(); len(got.Services) != 1000 || !d.Info().Partial {
				b.Fatalf("%d services served, partial %v", len(got.Services), d.Info().Partial)
			}
		}
	})
}

// BenchmarkDesiredChange times a node's adoption of a new desired state
// of 1000 services that differs from the last by one service (its
// decoding, and the state persisted to desired.json), as on every
// change a manager publishes; publishing is outside the timing.
//
//	go test -run '^$' -bench DesiredChange ./mesh/records/
func BenchmarkDesiredChange(b *testing.B) {
	db, p := NewFakeDB("m1"), NewPublisher()
	o := thousandServices()
	if err := p.Publish(db, o, 1, ""); err != nil {
		b.Fatal(err)
	}
	d, err := NewDesired(db, filepath.Join(b.TempDir(), "desired.json"))
	if err != nil {
		b.Fatal(err)
	}
	d.Current()
	id := fmt.Sprintf("%025d", 0)
	for i := range b.N {
		b.StopTimer()
		s := o.Services[id]
		s.Env = []string{fmt.Sprintf("A=%d", i)}
		o.Services[id] = s
		if err := p.Publish(db, o, uint64(i+2), ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if got := d.Current(); got.Services[id].Env[0] != s.Env[0] || !d.Fresh() {
			b.Fatalf("change %d not adopted", i)
		}
	}
}
