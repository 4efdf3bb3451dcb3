package lab

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mountinfoSample = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:23 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755
101 25 0:4 net:[4026532288] /run/netns/tnode1 rw shared:60 - nsfs nsfs rw
102 25 0:4 net:[4026532290] /run/meshd-lab/t/node1/netns/ingress_sbox rw shared:61 - nsfs nsfs rw
103 25 0:23 /x /run/meshd-lab/t/node1/a\040b rw - tmpfs tmpfs rw
104 25 0:23 /y /run/meshd-lab/t rw - tmpfs tmpfs rw
105 25 0:4 net:[4026532299] /run/meshd-lab/t/node1/netns/ingress_sbox rw - nsfs nsfs rw
106 25 0:4 net:[4026532300] /run/meshd-lab/tx/node1/netns/other rw - nsfs nsfs rw
`

func TestMountsUnder(t *testing.T) {
	ms, err := parseMountinfo(strings.NewReader(mountinfoSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("got %d mounts, want 8", len(ms))
	}
	var got []string
	for _, m := range mountsUnder(ms, "/run/meshd-lab/t/") {
		got = append(got, m.FSType+" "+m.Point)
	}
	want := []string{ // deepest first; a stacked point twice; never the "tx" lab
		"nsfs /run/meshd-lab/t/node1/netns/ingress_sbox",
		"nsfs /run/meshd-lab/t/node1/netns/ingress_sbox",
		"tmpfs /run/meshd-lab/t/node1/a b",
		"tmpfs /run/meshd-lab/t",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mountsUnder mismatch (-want +got):\n%s", diff)
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{"1 2 3", "22 1 254:0 / / rw shared:1 ext4 /dev/vda rw"} {
		if _, err := parseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("parseMountinfo(%q) succeeded, want error", in)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := map[string]string{`a\040b`: "a b", `\134`: `\`, `tail\04`: `tail\04`, `plain`: "plain"}
	for in, want := range tests {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}
