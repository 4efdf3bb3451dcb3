package records

import (
	"fmt"
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
