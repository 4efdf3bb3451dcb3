package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// FuzzRequest feeds user input to AddNetwork. It must never panic, must
// fail only with this package's errors and without changing anything, and
// a network it accepts must be valid and hand out only good addresses.
func FuzzRequest(f *testing.F) {
	f.Add("10.20.0.0/24", "", "", "", "")
	f.Add("10.20.0.5/24", "10.20.0.1", "10.20.0.128/25", "router", "10.20.0.10")
	f.Add("10.20.0.0/29", "10.20.0.6", "10.20.0.4/30", "a", "10.20.0.5")
	f.Add("10.255.1.0/24", "", "", "", "")
	f.Add("192.168.33.0/24", "", "", "", "")
	f.Add("::ffff:10.0.0.0/104", "::ffff:10.0.0.1", "", "", "")
	f.Add("", "10.0.0.1", "", "", "")
	f.Add("10.0.0.0/8", "10.255.255.254", "10.128.0.0/9", "x", "10.0.0.0")
	f.Fuzz(func(t *testing.T, subnet, gateway, ipRange, auxName, auxIP string) {
		req := Request{Subnet: subnet, Gateway: gateway, IPRange: ipRange}
		if auxName != "" || auxIP != "" {
			req.AuxAddresses = map[string]string{auxName: auxIP}
		}
		a := newAllocator(t)
		if _, err := a.AddIngress("ingress"); err != nil {
			t.Fatal(err)
		}
		before := a.Clone()
		n, err := a.AddNetwork("net", req, node1)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrOverlap) {
				t.Fatalf("%+v: unexpected error kind: %v", req, err)
			}
			if !reflect.DeepEqual(a, before) {
				t.Fatalf("%+v: failed AddNetwork changed the allocator", req)
			}
			return
		}
		if err := checkNetwork(n); err != nil {
			t.Fatalf("%+v: accepted network is invalid: %v", req, err)
		}
		seen := map[netip.Addr]bool{}
		for range 64 {
			ip, err := a.Allocate("net", netip.Addr{})
			if errors.Is(err, ErrExhausted) {
				break
			}
			if err != nil {
				t.Fatalf("%+v: Allocate: %v", req, err)
			}
			if seen[ip] || ip == n.Gateway || checkHost("address", n.Subnet, ip) != nil {
				t.Fatalf("%+v: handed out %v (twice, the gateway or not a host address)", req, ip)
			}
			for _, aux := range n.Aux {
				if ip == aux {
					t.Fatalf("%+v: handed out aux address %v", req, ip)
				}
			}
			seen[ip] = true
		}
		roundTrip(t, a)
	})
}

// FuzzDecode feeds arbitrary bytes to UnmarshalJSON: it must never panic,
// and what it accepts must encode and decode to the same state.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"Config":{"OverlayPool":"10.0.0.0/8","OverlayPrefixLen":24,"FirstVNI":4097},` +
		`"Networks":[{"ID":"a","Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","VNI":4097,"Last":"10.0.0.3",` +
		`"Allocated":["10.0.0.2","10.0.0.3"]}]}`))
	f.Add([]byte(`{"Networks":[{"ID":"a","Subnet":"10.0.0.0/29","Gateway":"10.0.0.6","IPRange":"10.0.0.4/30",` +
		`"Aux":{"r":"10.0.0.5"},"VNI":5,"Last":"10.0.0.7","Allocated":["::ffff:10.0.0.4"]}]}`))
	f.Add([]byte(`{"Config":{"OverlayPool":"10.0.0.0/29","OverlayPrefixLen":29,"FirstVNI":16777215}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Allocator
		if err := json.Unmarshal(data, &a); err != nil {
			return
		}
		roundTrip(t, &a)
		// A decoded allocator keeps working.
		for _, id := range a.ids() {
			if _, err := a.Allocate(id, netip.Addr{}); err != nil && !errors.Is(err, ErrExhausted) {
				t.Fatalf("Allocate(%s): %v", id, err)
			}
		}
		if _, err := a.AddNetwork("fuzz-new", Request{}, nil); err != nil && !errors.Is(err, ErrExhausted) {
			t.Fatalf("AddNetwork: %v", err)
		}
	})
}

// roundTrip checks that a encodes and decodes to the same state.
func roundTrip(t *testing.T, a *Allocator) {
	t.Helper()
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var b Allocator
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("decode own output %s: %v", data, err)
	}
	if !reflect.DeepEqual(&b, a) {
		t.Fatalf("round trip changed the state:\n%s\n%s", data, dump(t, &b))
	}
}
