package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExhaustion(t *testing.T) {
	a := newAllocator(t)
	mustAdd(t, a, "small", Request{Subnet: "10.20.0.0/29"})
	got := mustAlloc(t, a, "small", 5)
	want := []netip.Addr{addr("10.20.0.2"), addr("10.20.0.3"), addr("10.20.0.4"), addr("10.20.0.5"), addr("10.20.0.6")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("addresses of a /29 (-want +got):\n%s", diff)
	}
	for i := range 2 { // exhaustion is stable, not a one-off
		ip, err := a.Allocate("small", netip.Addr{})
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("allocation %d beyond 5: got %v, %v, want ErrExhausted", i+6, ip, err)
		}
	}
	if err := a.Release("small", addr("10.20.0.4")); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if ip, err := a.Allocate("small", netip.Addr{}); err != nil || ip != addr("10.20.0.4") {
		t.Errorf("after releasing 10.20.0.4: got %v, %v, want 10.20.0.4", ip, err)
	}
}

// TestReuseOrder checks serial allocation: a released address comes back
// only once the range has wrapped.
func TestReuseOrder(t *testing.T) {
	p, err := NewPool(prefix("10.20.0.0/29"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		release string // "" allocates
		want    string // address allocated, or "exhausted"
	}{
		{name: "first after gateway", want: "10.20.0.2"},
		{name: "second", want: "10.20.0.3"},
		{name: "third", want: "10.20.0.4"},
		{name: "release .3", release: "10.20.0.3"},
		{name: "not the released one", want: "10.20.0.5"},
		{name: "release .2", release: "10.20.0.2"},
		{name: "last of the range", want: "10.20.0.6"},
		{name: "wraps to the oldest free", want: "10.20.0.2"},
		{name: "then the next free", want: "10.20.0.3"},
		{name: "full", want: "exhausted"},
		{name: "release .6", release: "10.20.0.6"},
		{name: "release .5", release: "10.20.0.5"},
		{name: "after the last one handed out", want: "10.20.0.5"},
		{name: "and on", want: "10.20.0.6"},
	}
	for _, s := range steps {
		if s.release != "" {
			if err := p.Release(addr(s.release)); err != nil {
				t.Fatalf("%s: Release: %v", s.name, err)
			}
			continue
		}
		got, err := p.Allocate(netip.Addr{})
		if s.want == "exhausted" {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("%s: got %v, %v, want ErrExhausted", s.name, got, err)
			}
			continue
		}
		if err != nil || got != addr(s.want) {
			t.Fatalf("%s: got %v, %v, want %s", s.name, got, err, s.want)
		}
	}
}

func TestAllocateWanted(t *testing.T) {
	// 10.20.0.0/24, gateway .1, range .128/25, aux .10 and .200.
	req := Request{
		Subnet:       "10.20.0.0/24",
		IPRange:      "10.20.0.128/25",
		AuxAddresses: map[string]string{"router": "10.20.0.10", "printer": "10.20.0.200"},
	}
	tests := []struct {
		name    string
		want    string
		wantErr error
	}{
		{name: "free inside the range", want: "10.20.0.130"},
		{name: "free outside the range", want: "10.20.0.5"},
		{name: "IPv4-mapped IPv6 form", want: "::ffff:10.20.0.6"},
		{name: "allocated already", want: "10.20.0.129", wantErr: ErrInUse},
		{name: "gateway", want: "10.20.0.1", wantErr: ErrInUse},
		{name: "aux address", want: "10.20.0.10", wantErr: ErrInUse},
		{name: "network address", want: "10.20.0.0", wantErr: ErrInvalid},
		{name: "broadcast address", want: "10.20.0.255", wantErr: ErrInvalid},
		{name: "outside the subnet", want: "10.20.1.5", wantErr: ErrInvalid},
		{name: "IPv6", want: "fd00::5", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			mustAdd(t, a, "net", req)
			mustAlloc(t, a, "net", 1) // 10.20.0.128 is the range's first: not the subnet's network address
			if _, err := a.Allocate("net", addr("10.20.0.129")); err != nil {
				t.Fatal(err)
			}
			got, err := a.Allocate("net", addr(tt.want))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v, want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != addr(tt.want).Unmap() {
				t.Fatalf("got %v, %v, want %s", got, err, tt.want)
			}
			// A wanted address does not move the cursor: the walk goes on
			// after .129, skipping what is taken.
			wantNext := addr("10.20.0.130")
			if got == wantNext {
				wantNext = wantNext.Next()
			}
			if next := mustAlloc(t, a, "net", 1)[0]; next != wantNext {
				t.Errorf("next automatic address: got %v, want %v", next, wantNext)
			}
		})
	}
}

// TestRangeAndAux allocates a whole ip-range and checks that the gateway
// and aux addresses never come out, and nothing outside the range does.
func TestRangeAndAux(t *testing.T) {
	a := newAllocator(t)
	mustAdd(t, a, "net", Request{
		Subnet:       "10.20.0.0/24",
		Gateway:      "10.20.0.17",
		IPRange:      "10.20.0.16/28",
		AuxAddresses: map[string]string{"a": "10.20.0.20", "b": "10.20.0.31", "c": "10.20.0.100"},
	})
	var got []string
	for {
		ip, err := a.Allocate("net", netip.Addr{})
		if errors.Is(err, ErrExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	// .16 … .31 without the gateway .17 and aux .20 and .31.
	want := []string{"10.20.0.16", "10.20.0.18", "10.20.0.19", "10.20.0.21", "10.20.0.22", "10.20.0.23",
		"10.20.0.24", "10.20.0.25", "10.20.0.26", "10.20.0.27", "10.20.0.28", "10.20.0.29", "10.20.0.30"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("range allocation (-want +got):\n%s", diff)
	}
}

func TestRelease(t *testing.T) {
	tests := []struct {
		name    string
		netID   string
		ip      string
		wantErr error
	}{
		{name: "allocated", netID: "net", ip: "10.20.0.2"},
		{name: "IPv4-mapped form", netID: "net", ip: "::ffff:10.20.0.2"},
		{name: "free", netID: "net", ip: "10.20.0.3", wantErr: ErrNotAllocated},
		{name: "gateway", netID: "net", ip: "10.20.0.1", wantErr: ErrNotAllocated},
		{name: "outside", netID: "net", ip: "10.30.0.2", wantErr: ErrNotAllocated},
		{name: "unknown network", netID: "nope", ip: "10.20.0.2", wantErr: ErrUnknownNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			mustAdd(t, a, "net", Request{Subnet: "10.20.0.0/24"})
			mustAlloc(t, a, "net", 1)
			err := a.Release(tt.netID, addr(tt.ip))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if err := a.Release(tt.netID, addr(tt.ip)); !errors.Is(err, ErrNotAllocated) {
					t.Errorf("second release: got %v, want ErrNotAllocated", err)
				}
			}
		})
	}
}

// TestBigSubnet checks that a /8 costs nothing up front and that its ends
// behave: the walk wraps from the broadcast address to .0.0.2.
func TestBigSubnet(t *testing.T) {
	p, err := NewPool(prefix("10.0.0.0/8"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Allocate(addr("10.255.255.254")); err != nil {
		t.Fatal(err)
	}
	p.last = addr("10.255.255.253") // as if the walk had come this far
	for _, want := range []string{"10.0.0.2", "10.0.0.3"} {
		if got, err := p.Allocate(netip.Addr{}); err != nil || got != addr(want) {
			t.Errorf("got %v, %v, want %s", got, err, want)
		}
	}
	if got := len(p.used); got != 3 {
		t.Errorf("entries held: got %d, want 3", got)
	}
}

func TestNewPoolBridge(t *testing.T) {
	p, err := NewPool(prefix("172.18.0.0/16"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Gateway(), addr("172.18.0.1"); got != want {
		t.Errorf("gateway: got %v, want %v", got, want)
	}
	// The node reserves the ingress sandbox's conventional address first.
	if got, err := p.Allocate(addr("172.18.0.2")); err != nil || got != addr("172.18.0.2") {
		t.Fatalf("reserve ingress sandbox: got %v, %v, want 172.18.0.2", got, err)
	}
	for _, want := range []string{"172.18.0.3", "172.18.0.4"} {
		if got, err := p.Allocate(netip.Addr{}); err != nil || got != addr(want) {
			t.Errorf("task: got %v, %v, want %s", got, err, want)
		}
	}
	for _, bad := range []struct {
		name    string
		subnet  string
		gateway string
	}{
		{name: "non-canonical", subnet: "172.18.0.1/16"},
		{name: "too small", subnet: "172.18.0.0/30"},
		{name: "gateway outside", subnet: "172.18.0.0/16", gateway: "172.19.0.1"},
	} {
		var gw netip.Addr
		if bad.gateway != "" {
			gw = addr(bad.gateway)
		}
		if _, err := NewPool(prefix(bad.subnet), gw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", bad.name, err)
		}
	}
}
