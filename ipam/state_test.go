package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJSONRoundTrip checks that a decoded allocator is the same state and
// goes on exactly as the original would: same cursor, same allocations.
func TestJSONRoundTrip(t *testing.T) {
	a := newAllocator(t)
	if _, err := a.AddIngress("ingress"); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, a, "ovnet", Request{})
	mustAdd(t, a, "user", Request{
		Subnet: "10.20.0.0/24", Gateway: "10.20.0.254", IPRange: "10.20.0.0/28",
		AuxAddresses: map[string]string{"router": "10.20.0.3"},
	})
	mustAlloc(t, a, "ingress", 3)
	mustAlloc(t, a, "ovnet", 4)
	mustAlloc(t, a, "user", 5)
	for _, r := range []struct{ net, ip string }{{"ovnet", "10.0.0.3"}, {"user", "10.20.0.2"}} {
		if err := a.Release(r.net, addr(r.ip)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Allocate("user", addr("10.20.0.100")); err != nil {
		t.Fatal(err)
	}

	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var b *Allocator
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	sameState(t, b, a)
	for _, id := range []string{"ingress", "ovnet", "user"} {
		want, got := mustAlloc(t, a, id, 3), mustAlloc(t, b, id, 3)
		if diff := cmp.Diff(addrStrings(want), addrStrings(got)); diff != "" {
			t.Errorf("%s: next addresses after decoding (-want +got):\n%s", id, diff)
		}
	}
	for _, id := range []string{"ingress", "ovnet", "user"} {
		wn, _ := a.Network(id)
		gn, _ := b.Network(id)
		if !equalNetwork(gn, wn) {
			t.Errorf("network %s: got %+v, want %+v", id, gn, wn)
		}
	}
}

func addrStrings(ips []netip.Addr) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func TestJSONShape(t *testing.T) {
	a := newAllocator(t)
	mustAdd(t, a, "ovnet", Request{})
	mustAlloc(t, a, "ovnet", 2)
	want := `{
  "Config": {
    "OverlayPool": "10.0.0.0/8",
    "OverlayPrefixLen": 24,
    "FirstVNI": 4097
  },
  "Networks": [
    {
      "ID": "ovnet",
      "Subnet": "10.0.0.0/24",
      "Gateway": "10.0.0.1",
      "VNI": 4097,
      "Last": "10.0.0.3",
      "Allocated": [
        "10.0.0.2",
        "10.0.0.3"
      ]
    }
  ]
}`
	if diff := cmp.Diff(want, dump(t, a)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// TestJSONInside checks the way the manager holds an allocator: a pointer
// field of its state struct, a value copy of which is encoded.
func TestJSONInside(t *testing.T) {
	type managerState struct {
		IPAM *Allocator
	}
	a := newAllocator(t)
	mustAdd(t, a, "ovnet", Request{})
	data, err := json.Marshal(managerState{IPAM: a})
	if err != nil {
		t.Fatal(err)
	}
	var got managerState
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	sameState(t, got.IPAM, a)
	var empty managerState
	if err := json.Unmarshal([]byte(`{"IPAM": null}`), &empty); err != nil || empty.IPAM != nil {
		t.Errorf("null: got %v, %v, want nil", empty.IPAM, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	const ok = `{"ID":"a","Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","VNI":4097`
	tests := []struct {
		name   string
		json   string
		wantIn string
	}{
		{name: "not JSON", json: `{`, wantIn: "unexpected end"},
		{name: "bad config", json: `{"Config":{"OverlayPrefixLen":31}}`, wantIn: "OverlayPrefixLen 31"},
		{name: "bad subnet text", json: `{"Networks":[{"ID":"a","Subnet":"10.0.0.0/33"}]}`, wantIn: "10.0.0.0/33"},
		{name: "no ID", json: `{"Networks":[{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","VNI":4097}]}`, wantIn: `network ID "" is empty`},
		{name: "no gateway", json: `{"Networks":[{"ID":"a","Subnet":"10.0.0.0/24","VNI":4097}]}`, wantIn: "gateway invalid IP is outside"},
		{name: "no VNI", json: `{"Networks":[{"ID":"a","Subnet":"10.0.0.0/24","Gateway":"10.0.0.1"}]}`, wantIn: "VNI 0"},
		{name: "same ID twice", json: `{"Networks":[` + ok + `},` + ok + `}]}`, wantIn: "network exists"},
		{name: "overlap", json: `{"Networks":[` + ok + `},{"ID":"b","Subnet":"10.0.0.0/16","Gateway":"10.0.0.1","VNI":4098}]}`, wantIn: "overlaps network a"},
		{name: "same VNI", json: `{"Networks":[` + ok + `},{"ID":"b","Subnet":"10.0.1.0/24","Gateway":"10.0.1.1","VNI":4097}]}`, wantIn: "VNI 4097 is network a's too"},
		{name: "allocated twice", json: `{"Networks":[` + ok + `,"Allocated":["10.0.0.2","10.0.0.2"]}]}`, wantIn: "10.0.0.2 is allocated"},
		{name: "allocated gateway", json: `{"Networks":[` + ok + `,"Allocated":["10.0.0.1"]}]}`, wantIn: "is the gateway"},
		{name: "allocated outside", json: `{"Networks":[` + ok + `,"Allocated":["10.0.1.2"]}]}`, wantIn: "outside subnet"},
		{name: "allocated empty", json: `{"Networks":[` + ok + `,"Allocated":[""]}]}`, wantIn: "empty allocated address"},
		{name: "cursor outside", json: `{"Networks":[` + ok + `,"Last":"10.0.1.2"}]}`, wantIn: "cursor 10.0.1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t)
			mustAdd(t, a, "keep", Request{Subnet: "10.20.0.0/24"})
			before := a.Clone()
			err := json.Unmarshal([]byte(tt.json), a)
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantIn)
			}
			sameState(t, a, before)
		})
	}
	t.Run("sentinel", func(t *testing.T) {
		var a Allocator
		err := a.UnmarshalJSON([]byte(`{"Networks":[` + ok + `,"Allocated":["10.0.0.1"]}]}`))
		if !errors.Is(err, ErrInUse) {
			t.Errorf("got %v, want ErrInUse", err)
		}
	})
}
