package ipam

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Address plan: the lab's underlay is 192.168.33.0/24 (node1 is
// 192.168.33.10), ingress 10.255.0.0/16, user overlays are carved from
// 10.0.0.0/8, user subnets given by hand live in 10.20.0.0/16.
var node1 = []netip.Prefix{netip.MustParsePrefix("192.168.33.10/24")}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// newAllocator returns an Allocator with DefaultConfig.
func newAllocator(t *testing.T) *Allocator {
	t.Helper()
	a, err := New(DefaultConfig())
	if err != nil {
		t.Fatalf("New(DefaultConfig()): %v", err)
	}
	return a
}

// mustAdd adds a user network or fails the test.
func mustAdd(t *testing.T, a *Allocator, id string, req Request) Network {
	t.Helper()
	n, err := a.AddNetwork(id, req, node1)
	if err != nil {
		t.Fatalf("AddNetwork(%s, %+v): %v", id, req, err)
	}
	return n
}

// mustAlloc allocates n addresses automatically on a network.
func mustAlloc(t *testing.T, a *Allocator, netID string, n int) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for range n {
		ip, err := a.Allocate(netID, netip.Addr{})
		if err != nil {
			t.Fatalf("Allocate(%s) after %v: %v", netID, out, err)
		}
		out = append(out, ip)
	}
	return out
}

// dump returns the allocator's JSON state, indented, for diffs.
func dump(t *testing.T, a *Allocator) string {
	t.Helper()
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// sameState fails unless got and want are deeply equal, which is what the
// manager's state store compares (reflect.DeepEqual).
func sameState(t *testing.T, got, want *Allocator) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state differs (-want +got):\n%s", cmp.Diff(dump(t, want), dump(t, got)))
	}
}
