package lb

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFakeRulesRefuses(t *testing.T) {
	base := "*nat\n:MESH-A - [0:0]\n-A MESH-A -j RETURN\n-I PREROUTING 1 -j MESH-A\nCOMMIT\n"
	tests := []struct {
		name, payload, err string
	}{
		{"jump to an undeclared chain", "*nat\n-A PREROUTING -j MESH-NOPE\nCOMMIT\n", "does not exist"},
		{"rule in a missing chain", "*nat\n-A MESH-NOPE -j RETURN\nCOMMIT\n", "does not exist"},
		{"delete a missing rule", "*nat\n-D MESH-A -j ACCEPT\nCOMMIT\n", "bad rule"},
		{"delete a referenced chain", "*nat\n:MESH-A - [0:0]\n-X MESH-A\nCOMMIT\n", "referenced"},
		{"delete a non-empty chain", "*nat\n-X MESH-A\nCOMMIT\n", "not empty"},
		{"delete a built-in chain", "*nat\n-X PREROUTING\nCOMMIT\n", "built-in"},
		{"MARK outside mangle", "*nat\n-A MESH-A -j MARK --set-mark 0x1\nCOMMIT\n", "not valid in table"},
		{"DNAT reached from POSTROUTING", "*nat\n:MESH-B - [0:0]\n-A MESH-B -j DNAT --to-destination 10.0.0.1\n-A POSTROUTING -j MESH-B\nCOMMIT\n", "reached from POSTROUTING"},
		{"unknown match", "*nat\n-A MESH-A -m geoip --src-cc FR -j RETURN\nCOMMIT\n", "couldn't load match"},
		{"chain name too long", "*nat\n:MESH-SVC-0123456789012345678901 - [0:0]\nCOMMIT\n", "too long"},
		{"no COMMIT", "*nat\n:MESH-B - [0:0]\n", "COMMIT expected"},
		{"loop", "*nat\n:MESH-B - [0:0]\n-A MESH-B -j MESH-A\n-A MESH-A -j MESH-B\nCOMMIT\n", "loop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFakeRules()
			ctx := context.Background()
			if err := f.Apply(ctx, []byte(base)); err != nil {
				t.Fatal(err)
			}
			before := saveText(t, f)
			err := f.Apply(ctx, []byte(tt.payload))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Apply = %v, want an error containing %q", err, tt.err)
			}
			if diff := cmp.Diff(before, saveText(t, f)); diff != "" {
				t.Errorf("a refused payload changed the table (-before +after):\n%s", diff)
			}
		})
	}
}

// TestFakeRulesCommitsPerTable models iptables-nft: a table that fails
// leaves the tables committed before it.
func TestFakeRulesCommitsPerTable(t *testing.T) {
	f := NewFakeRules()
	payload := "*filter\n:MESH-A - [0:0]\nCOMMIT\n*nat\n-A MESH-NOPE -j RETURN\nCOMMIT\n"
	if err := f.Apply(context.Background(), []byte(payload)); err == nil {
		t.Fatal("Apply = nil, want an error")
	}
	if !strings.Contains(saveText(t, f), ":MESH-A - [0:0]") {
		t.Errorf("filter table not committed before the failing nat table:\n%s", saveText(t, f))
	}
}

func TestFakeRulesSaveCanonical(t *testing.T) {
	f := NewFakeRules()
	payload := "*mangle\n:MESH-A - [0:0]\n-A MESH-A -j MARK --set-mark 0x100\nCOMMIT\n" +
		"*filter\n:MESH-B - [0:0]\n-A MESH-B -j REJECT\n-I INPUT 1 -j MESH-B\nCOMMIT\n"
	if err := f.Apply(context.Background(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	got := saveText(t, f)
	for _, want := range []string{"-A MESH-A -j MARK --set-xmark 0x100/0xffffffff", "-A MESH-B -j REJECT --reject-with icmp-port-unreachable"} {
		if !strings.Contains(got, want) {
			t.Errorf("Save lacks %q:\n%s", want, got)
		}
	}
	// -D matches what was written, as iptables does.
	if err := f.Apply(context.Background(), []byte("*mangle\n-D MESH-A -j MARK --set-mark 0x100\nCOMMIT\n")); err != nil {
		t.Errorf("-D of a rule as written: %v", err)
	}
}

func TestFakeIPVSRefuses(t *testing.T) {
	f := NewFakeIPVS()
	svc := VirtualService{FWMark: 0x100, Scheduler: "rr"}
	dest := Destination{Addr: addr("10.255.0.5"), Weight: 1}
	if err := f.EnsureDestination(svc, dest); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("destination on a missing service = %v, want ESRCH", err)
	}
	if err := f.EnsureService(VirtualService{FWMark: 0, Scheduler: "rr"}); err == nil {
		t.Error("fwmark 0 accepted")
	}
	if err := f.EnsureService(VirtualService{FWMark: 1, Scheduler: "fastest"}); err == nil {
		t.Error("unknown scheduler accepted")
	}
	if err := f.EnsureService(svc); err != nil {
		t.Fatal(err)
	}
	if err := f.EnsureDestination(svc, Destination{Addr: addr("10.255.0.5"), Weight: -1}); err == nil {
		t.Error("negative weight accepted")
	}
	if err := f.EnsureDestination(svc, dest); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveDestination(svc, Destination{Addr: addr("10.9.9.9")}); err != nil {
		t.Errorf("removing an absent destination = %v, want nil", err)
	}
	if err := f.RemoveService(VirtualService{FWMark: 0x999}); err != nil {
		t.Errorf("removing an absent service = %v, want nil", err)
	}
	want := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"FWM  256 rr\n" +
		"  -> 10.255.0.5:0                 Masq    1      0          0         \n"
	if diff := cmp.Diff(want, f.Dump()); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
}
