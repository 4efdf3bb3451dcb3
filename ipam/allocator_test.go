package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAddIngress(t *testing.T) {
	a := newAllocator(t)
	got, err := a.AddIngress("ingress")
	if err != nil {
		t.Fatal(err)
	}
	want := Network{ID: "ingress", Subnet: prefix("10.255.0.0/16"), Gateway: addr("10.255.0.1"), VNI: 4096}
	if !equalNetwork(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := a.AddIngress("ingress2"); !errors.Is(err, ErrNetworkExists) {
		t.Errorf("second ingress: got %v, want ErrNetworkExists", err)
	}
	// The first user overlay is the tutorials' 10.0.0.0/24, VNI 4097.
	n := mustAdd(t, a, "ovnet", Request{})
	if n.Subnet != prefix("10.0.0.0/24") || n.Gateway != addr("10.0.0.1") || n.VNI != 4097 {
		t.Errorf("first overlay: got %v gw %v vni %d, want 10.0.0.0/24 gw 10.0.0.1 vni 4097", n.Subnet, n.Gateway, n.VNI)
	}
	if ip := mustAlloc(t, a, "ingress", 1)[0]; ip != addr("10.255.0.2") {
		t.Errorf("first ingress address: got %v, want 10.255.0.2", ip)
	}
}

func equalNetwork(x, y Network) bool {
	return cmp.Equal(x, y, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }))
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		host   []netip.Prefix
		// wantIn is a part of the error message naming what overlaps.
		wantIn string
	}{
		{name: "same as another network", subnet: "10.20.0.0/24", wantIn: "network user (10.20.0.0/24)"},
		{name: "inside another network", subnet: "10.20.0.64/26", wantIn: "network user"},
		{name: "around another network", subnet: "10.20.0.0/16", wantIn: "network user"},
		{name: "the carved network", subnet: "10.0.0.0/16", wantIn: "network auto (10.0.0.0/24)"},
		{name: "ingress range", subnet: "10.255.7.0/24", wantIn: "network ingress (10.255.0.0/16)"},
		{name: "around ingress", subnet: "10.128.0.0/9", wantIn: "network ingress"},
		{name: "host address", subnet: "192.168.33.0/28", host: node1, wantIn: "host address 192.168.33.10/24"},
		{name: "host /32", subnet: "172.30.0.0/16", host: []netip.Prefix{prefix("172.30.1.1/32")}, wantIn: "host address 172.30.1.1/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			if _, err := a.AddIngress("ingress"); err != nil {
				t.Fatal(err)
			}
			mustAdd(t, a, "auto", Request{})
			mustAdd(t, a, "user", Request{Subnet: "10.20.0.0/24"})
			before := a.Clone()
			_, err := a.AddNetwork("new", Request{Subnet: tt.subnet}, tt.host)
			if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("got %v, want ErrOverlap naming %q", err, tt.wantIn)
			}
			sameState(t, a, before)
		})
	}
	t.Run("ingress after a user network took its range", func(t *testing.T) {
		a := newAllocator(t)
		mustAdd(t, a, "user", Request{Subnet: "10.255.3.0/24"})
		if _, err := a.AddIngress("ingress"); !errors.Is(err, ErrOverlap) {
			t.Errorf("got %v, want ErrOverlap", err)
		}
	})
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		// wantIn is a part of the error message.
		wantIn string
	}{
		{name: "malformed CIDR", req: Request{Subnet: "10.20.0.0/33"}, wantIn: `subnet "10.20.0.0/33" is not a CIDR`},
		{name: "no prefix length", req: Request{Subnet: "10.20.0.0"}, wantIn: "is not a CIDR"},
		{name: "garbage", req: Request{Subnet: "overlay"}, wantIn: "is not a CIDR"},
		{name: "non-canonical", req: Request{Subnet: "10.20.0.5/24"}, wantIn: "subnet 10.20.0.5/24 is not canonical, use 10.20.0.0/24"},
		{name: "IPv6", req: Request{Subnet: "fd00::/64"}, wantIn: "is not IPv4"},
		{name: "IPv4-mapped IPv6", req: Request{Subnet: "::ffff:10.20.0.0/120"}, wantIn: "is not IPv4"},
		{name: "too large", req: Request{Subnet: "10.0.0.0/7"}, wantIn: "between /8 and /29"},
		{name: "too small", req: Request{Subnet: "10.20.0.0/30"}, wantIn: "between /8 and /29"},
		{name: "gateway outside", req: Request{Subnet: "10.20.0.0/24", Gateway: "10.20.1.1"}, wantIn: "gateway 10.20.1.1 is outside subnet 10.20.0.0/24"},
		{name: "gateway network address", req: Request{Subnet: "10.20.0.0/24", Gateway: "10.20.0.0"}, wantIn: "network address"},
		{name: "gateway broadcast", req: Request{Subnet: "10.20.0.0/24", Gateway: "10.20.0.255"}, wantIn: "broadcast address"},
		{name: "gateway malformed", req: Request{Subnet: "10.20.0.0/24", Gateway: "10.20.0.300"}, wantIn: `gateway "10.20.0.300" is not an IP address`},
		{name: "gateway without subnet", req: Request{Gateway: "10.20.0.1"}, wantIn: "need --subnet"},
		{name: "ip-range without subnet", req: Request{IPRange: "10.20.0.0/25"}, wantIn: "need --subnet"},
		{name: "aux without subnet", req: Request{AuxAddresses: map[string]string{"a": "10.20.0.5"}}, wantIn: "need --subnet"},
		{name: "ip-range outside", req: Request{Subnet: "10.20.0.0/24", IPRange: "10.20.1.0/25"}, wantIn: "ip-range 10.20.1.0/25 is outside subnet"},
		{name: "ip-range larger", req: Request{Subnet: "10.20.0.0/24", IPRange: "10.20.0.0/23"}, wantIn: "is outside subnet"},
		{name: "ip-range non-canonical", req: Request{Subnet: "10.20.0.0/24", IPRange: "10.20.0.130/25"}, wantIn: "use 10.20.0.128/25"},
		{name: "ip-range malformed", req: Request{Subnet: "10.20.0.0/24", IPRange: "10.20.0.128-10.20.0.200"}, wantIn: "ip-range"},
		{name: "aux outside", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"r": "10.21.0.5"}}, wantIn: "aux-address r 10.21.0.5 is outside"},
		{name: "aux is gateway", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"r": "10.20.0.1"}}, wantIn: "is the gateway already"},
		{name: "aux twice", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"a": "10.20.0.5", "b": "10.20.0.5"}}, wantIn: "aux-address b=10.20.0.5 is aux-address a already"},
		{name: "aux no name", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"": "10.20.0.5"}}, wantIn: "is empty or not UTF-8"},
		{name: "aux name not UTF-8", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"\xff": "10.20.0.5"}}, wantIn: "is empty or not UTF-8"},
		{name: "aux malformed", req: Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"r": "router"}}, wantIn: `aux-address r "router" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			before := a.Clone()
			_, err := a.AddNetwork("net", tt.req, node1)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tt.wantIn)
			}
			sameState(t, a, before)
		})
	}
}

func TestUserRequest(t *testing.T) {
	a := newAllocator(t)
	got := mustAdd(t, a, "net", Request{
		Subnet:       "10.20.0.0/16",
		Gateway:      "10.20.0.254",
		IPRange:      "10.20.5.0/24",
		AuxAddresses: map[string]string{"router": "10.20.0.2"},
	})
	want := Network{
		ID: "net", Subnet: prefix("10.20.0.0/16"), Gateway: addr("10.20.0.254"), IPRange: prefix("10.20.5.0/24"),
		Aux: map[string]netip.Addr{"router": addr("10.20.0.2")}, VNI: 4097,
	}
	if !equalNetwork(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The returned network is a copy.
	got.Aux["router"] = addr("10.20.0.3")
	if n, _ := a.Network("net"); n.Aux["router"] != addr("10.20.0.2") {
		t.Errorf("changing the returned Aux changed the allocator: %v", n.Aux)
	}
	if ip := mustAlloc(t, a, "net", 1)[0]; ip != addr("10.20.5.0") {
		t.Errorf("first address of the ip-range: got %v, want 10.20.5.0 (not the subnet's network address)", ip)
	}
}

func TestVNIOrderAndReuse(t *testing.T) {
	a := newAllocator(t)
	if _, err := a.AddIngress("ingress"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		add     string // network to add, or
		remove  string // network to remove
		wantVNI uint32
	}{
		{name: "first user network", add: "a", wantVNI: 4097},
		{name: "in order", add: "b", wantVNI: 4098},
		{name: "in order again", add: "c", wantVNI: 4099},
		{name: "remove the middle one", remove: "b"},
		{name: "lowest free is reused", add: "d", wantVNI: 4098},
		{name: "then counting on", add: "e", wantVNI: 4100},
		{name: "remove the first", remove: "a"},
		{name: "remove the ingress network", remove: "ingress"},
		{name: "ingress VNI is never a user's", add: "f", wantVNI: 4097},
	}
	for _, s := range steps {
		if s.remove != "" {
			if err := a.RemoveNetwork(s.remove); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		if n := mustAdd(t, a, s.add, Request{}); n.VNI != s.wantVNI {
			t.Errorf("%s: got VNI %d, want %d", s.name, n.VNI, s.wantVNI)
		}
	}
	cfg := DefaultConfig()
	cfg.FirstVNI = 4096
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := mustAdd(t, b, "a", Request{}); n.VNI != 4097 {
		t.Errorf("FirstVNI 4096: got VNI %d, want 4097 (4096 is the ingress network's)", n.VNI)
	}
}

func TestCarveOrder(t *testing.T) {
	tests := []struct {
		name  string
		setup []Request // user networks that exist already, in order
		host  []netip.Prefix
		want  string
	}{
		{name: "empty", want: "10.0.0.0/24"},
		{name: "after one", setup: []Request{{}}, want: "10.0.1.0/24"},
		{name: "user network on the first", setup: []Request{{Subnet: "10.0.0.0/24"}}, want: "10.0.1.0/24"},
		{name: "small user network inside the first", setup: []Request{{Subnet: "10.0.0.128/25"}}, want: "10.0.1.0/24"},
		{name: "user /16 at the start", setup: []Request{{Subnet: "10.0.0.0/16"}}, want: "10.1.0.0/24"},
		{name: "gap is filled", setup: []Request{{}, {Subnet: "10.0.1.0/24"}, {Subnet: "10.0.3.0/24"}}, want: "10.0.2.0/24"},
		{name: "host address", host: []netip.Prefix{prefix("10.0.0.5/32")}, want: "10.0.1.0/24"},
		{name: "host /8 route covers the pool", host: []netip.Prefix{prefix("10.1.2.3/8")}, want: "exhausted"},
		{name: "host /23", host: []netip.Prefix{prefix("10.0.1.77/23")}, want: "10.0.2.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			for i, req := range tt.setup {
				mustAdd(t, a, string(rune('a'+i)), req)
			}
			n, err := a.AddNetwork("new", Request{}, tt.host)
			if tt.want == "exhausted" {
				if !errors.Is(err, ErrExhausted) {
					t.Fatalf("got %v, %v, want ErrExhausted", n.Subnet, err)
				}
				return
			}
			if err != nil || n.Subnet != prefix(tt.want) {
				t.Fatalf("got %v, %v, want %s", n.Subnet, err, tt.want)
			}
			if gw := tt.want[:len(tt.want)-4] + "1"; n.Gateway != addr(gw) {
				t.Errorf("gateway: got %v, want %s", n.Gateway, gw)
			}
		})
	}
}

func TestCarveSkipsIngressAndWraps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OverlayPool = prefix("10.254.0.0/15")
	cfg.OverlayPrefixLen = 16
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddIngress("ingress"); err != nil {
		t.Fatal(err)
	}
	if n := mustAdd(t, a, "a", Request{}); n.Subnet != prefix("10.254.0.0/16") {
		t.Errorf("got %v, want 10.254.0.0/16", n.Subnet)
	}
	if _, err := a.AddNetwork("b", Request{}, nil); !errors.Is(err, ErrExhausted) {
		t.Errorf("pool full: got %v, want ErrExhausted", err)
	}
}

// TestFailedCallsChangeNothing runs every failing call on a populated
// allocator and checks that its state is exactly what it was.
func TestFailedCallsChangeNothing(t *testing.T) {
	calls := []struct {
		name string
		call func(a *Allocator) error
	}{
		{name: "add existing ID", call: func(a *Allocator) error { _, err := a.AddNetwork("small", Request{}, nil); return err }},
		{name: "add empty ID", call: func(a *Allocator) error { _, err := a.AddNetwork("", Request{}, nil); return err }},
		{name: "add overlapping", call: func(a *Allocator) error {
			_, err := a.AddNetwork("x", Request{Subnet: "10.20.0.0/16"}, nil)
			return err
		}},
		{name: "add invalid", call: func(a *Allocator) error {
			_, err := a.AddNetwork("x", Request{Subnet: "10.30.0.0/24", Gateway: "10.31.0.1"}, nil)
			return err
		}},
		{name: "add with pool covered", call: func(a *Allocator) error {
			_, err := a.AddNetwork("x", Request{}, []netip.Prefix{prefix("10.0.0.0/8")})
			return err
		}},
		{name: "second ingress", call: func(a *Allocator) error { _, err := a.AddIngress("x"); return err }},
		{name: "allocate exhausted", call: func(a *Allocator) error { _, err := a.Allocate("small", netip.Addr{}); return err }},
		{name: "allocate taken", call: func(a *Allocator) error { _, err := a.Allocate("small", addr("10.20.0.3")); return err }},
		{name: "allocate gateway", call: func(a *Allocator) error { _, err := a.Allocate("ovnet", addr("10.0.0.1")); return err }},
		{name: "allocate outside", call: func(a *Allocator) error { _, err := a.Allocate("ovnet", addr("10.0.1.1")); return err }},
		{name: "allocate unknown network", call: func(a *Allocator) error { _, err := a.Allocate("x", netip.Addr{}); return err }},
		{name: "release free", call: func(a *Allocator) error { return a.Release("ovnet", addr("10.0.0.200")) }},
		{name: "release gateway", call: func(a *Allocator) error { return a.Release("ovnet", addr("10.0.0.1")) }},
		{name: "release unknown network", call: func(a *Allocator) error { return a.Release("x", addr("10.0.0.2")) }},
		{name: "remove unknown network", call: func(a *Allocator) error { return a.RemoveNetwork("x") }},
		{name: "decode garbage", call: func(a *Allocator) error { return a.UnmarshalJSON([]byte(`{"Networks":[{"ID":"a"}]}`)) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			a := newAllocator(t)
			if _, err := a.AddIngress("ingress"); err != nil {
				t.Fatal(err)
			}
			mustAdd(t, a, "ovnet", Request{})
			mustAdd(t, a, "small", Request{Subnet: "10.20.0.0/29"})
			mustAlloc(t, a, "ovnet", 3)
			mustAlloc(t, a, "small", 5)
			before := a.Clone()
			if err := c.call(a); err == nil {
				t.Fatal("got no error, want one")
			}
			sameState(t, a, before)
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	a := newAllocator(t)
	mustAdd(t, a, "net", Request{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"r": "10.20.0.9"}})
	mustAlloc(t, a, "net", 2)
	want := dump(t, a)
	c := a.Clone()
	sameState(t, c, a)
	mustAlloc(t, c, "net", 2)
	if err := c.Release("net", addr("10.20.0.2")); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, c, "other", Request{})
	c.nets["net"].net.Aux["r"] = addr("10.20.0.10")
	if diff := cmp.Diff(want, dump(t, a)); diff != "" {
		t.Errorf("changing the clone changed the original (-want +got):\n%s", diff)
	}
	if got := (*Allocator)(nil).Clone(); got != nil {
		t.Errorf("nil.Clone(): got %v, want nil", got)
	}
}

func TestRemoveNetwork(t *testing.T) {
	a := newAllocator(t)
	mustAdd(t, a, "a", Request{})
	mustAlloc(t, a, "a", 3) // allocated addresses do not block removal
	if err := a.RemoveNetwork("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Network("a"); ok {
		t.Error("network still there after RemoveNetwork")
	}
	if err := a.RemoveNetwork("a"); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("second remove: got %v, want ErrUnknownNetwork", err)
	}
	// The subnet and VNI are free again, and the new network starts empty.
	n := mustAdd(t, a, "b", Request{})
	if n.Subnet != prefix("10.0.0.0/24") || n.VNI != 4097 {
		t.Errorf("got %v vni %d, want 10.0.0.0/24 vni 4097", n.Subnet, n.VNI)
	}
	if ip := mustAlloc(t, a, "b", 1)[0]; ip != addr("10.0.0.2") {
		t.Errorf("first address of the new network: got %v, want 10.0.0.2", ip)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		wantIn string // "" means valid
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "zero is defaults", mod: func(c *Config) { *c = Config{} }},
		{name: "pool IPv6", mod: func(c *Config) { c.OverlayPool = prefix("fd00::/8") }, wantIn: "OverlayPool fd00::/8 is not IPv4"},
		{name: "pool non-canonical", mod: func(c *Config) { c.OverlayPool = prefix("10.1.0.0/8") }, wantIn: "use 10.0.0.0/8"},
		{name: "pool too large", mod: func(c *Config) { c.OverlayPool = prefix("0.0.0.0/0") }, wantIn: "larger than /8"},
		{name: "prefix too long", mod: func(c *Config) { c.OverlayPrefixLen = 30 }, wantIn: "OverlayPrefixLen 30"},
		{name: "prefix too short", mod: func(c *Config) { c.OverlayPrefixLen = 4 }, wantIn: "OverlayPrefixLen 4"},
		{name: "prefix shorter than pool", mod: func(c *Config) { c.OverlayPool = prefix("10.0.0.0/16"); c.OverlayPrefixLen = 12 }, wantIn: "shorter than OverlayPool"},
		{name: "VNI too big", mod: func(c *Config) { c.FirstVNI = 1 << 24 }, wantIn: "FirstVNI 16777216"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			_, err := New(cfg)
			if tt.wantIn == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tt.wantIn)
			}
		})
	}
}
