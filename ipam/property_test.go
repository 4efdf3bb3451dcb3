package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// model is an independent, naive account of one network: every address of
// the subnet in a list, which of them are held, and serial allocation by
// walking the list.
type model struct {
	net   Network
	hosts []netip.Addr // host addresses of the subnet, in order
	rng   netip.Prefix
	held  map[netip.Addr]bool
	last  netip.Addr
}

func newModel(n Network) *model {
	m := &model{net: n, rng: n.Subnet, held: map[netip.Addr]bool{}}
	if n.IPRange.IsValid() {
		m.rng = n.IPRange
	}
	first, bcast := n.Subnet.Addr(), fromU32(u32(n.Subnet.Addr())|^uint32(0)>>n.Subnet.Bits())
	for ip := first.Next(); ip != bcast; ip = ip.Next() {
		m.hosts = append(m.hosts, ip)
	}
	return m
}

func (m *model) reserved(ip netip.Addr) bool {
	if ip == m.net.Gateway {
		return true
	}
	for _, aux := range m.net.Aux {
		if aux == ip {
			return true
		}
	}
	return false
}

// next is what serial allocation must hand out, or false when nothing is
// free in the range.
func (m *model) next() (netip.Addr, bool) {
	var cands []netip.Addr
	for _, ip := range m.hosts {
		if m.rng.Contains(ip) {
			cands = append(cands, ip)
		}
	}
	start := 0
	if i := slices.Index(cands, m.last); i >= 0 {
		start = i + 1
	}
	for i := range cands {
		ip := cands[(start+i)%len(cands)]
		if !m.held[ip] && !m.reserved(ip) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// TestNeverTwice runs random sequences of allocations (automatic and
// wanted), releases, clones and JSON round trips against the model: no
// address is ever handed out twice, reserved addresses never are, every
// call succeeds exactly when the model says it should, and automatic
// allocation follows the serial order.
func TestNeverTwice(t *testing.T) {
	reqs := map[string]Request{
		"tiny":  {Subnet: "10.20.0.0/29"},
		"range": {Subnet: "10.20.1.0/27", Gateway: "10.20.1.9", IPRange: "10.20.1.8/29", AuxAddresses: map[string]string{"r": "10.20.1.12", "s": "10.20.1.20"}},
		"wide":  {Subnet: "10.20.2.0/28", Gateway: "10.20.2.14"},
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 0x6d657368))
			a := newAllocator(t)
			models := map[string]*model{}
			for _, id := range []string{"tiny", "range", "wide"} {
				models[id] = newModel(mustAdd(t, a, id, reqs[id]))
			}
			ids := []string{"tiny", "range", "wide"}
			for step := range 2000 {
				id := ids[rnd.IntN(len(ids))]
				a = randomStep(t, rnd, a, id, models[id], step)
			}
			for _, id := range ids {
				var want []netip.Addr
				for ip := range models[id].held {
					want = append(want, ip)
				}
				slices.SortFunc(want, netip.Addr.Compare)
				if got := a.nets[id].pool.Allocated(); !slices.Equal(got, want) {
					t.Errorf("%s: allocated: got %v, want %v", id, got, want)
				}
			}
		})
	}
}

// randomStep does one random operation on network id and checks it against
// m. It returns the allocator to go on with (a clone or a decoded copy now
// and then, as the manager would have after a commit or a restart).
func randomStep(t *testing.T, rnd *rand.Rand, a *Allocator, id string, m *model, step int) *Allocator {
	t.Helper()
	switch op := rnd.IntN(10); {
	case op < 4: // automatic allocation
		want, ok := m.next()
		got, err := a.Allocate(id, netip.Addr{})
		if !ok {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("step %d %s: got %v, %v, want ErrExhausted", step, id, got, err)
			}
			return a
		}
		if err != nil || got != want {
			t.Fatalf("step %d %s: got %v, %v, want %v", step, id, got, err, want)
		}
		m.held[got], m.last = true, got
	case op < 6: // wanted address, anywhere in or near the subnet
		ip := fromU32(u32(m.net.Subnet.Addr()) + uint32(rnd.IntN(len(m.hosts)+4)))
		free := slices.Contains(m.hosts, ip) && !m.held[ip] && !m.reserved(ip)
		got, err := a.Allocate(id, ip)
		if free != (err == nil) {
			t.Fatalf("step %d %s: Allocate(%v): got %v, %v, want success %v", step, id, ip, got, err, free)
		}
		if err == nil {
			m.held[ip] = true
		}
	case op < 9: // release, of a held address mostly
		ip := fromU32(u32(m.net.Subnet.Addr()) + uint32(rnd.IntN(len(m.hosts)+2)))
		for held := range m.held {
			if rnd.IntN(3) > 0 {
				ip = held
				break
			}
		}
		err := a.Release(id, ip)
		if m.held[ip] != (err == nil) {
			t.Fatalf("step %d %s: Release(%v): got %v, want success %v", step, id, ip, err, m.held[ip])
		}
		delete(m.held, ip)
	default: // the manager's commit, or a restart
		if rnd.IntN(2) == 0 {
			return a.Clone()
		}
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var b *Allocator
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatalf("step %d: decode: %v", step, err)
		}
		return b
	}
	return a
}
