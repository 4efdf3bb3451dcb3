package lb

import (
	"fmt"
	"regexp"
	"testing"
)

func TestChainNamesFit(t *testing.T) {
	names := []string{chainMarkPre, chainMarkIn, chainMarkOut, chainSNAT, chainServices, chainReject,
		chainIngress, chainIngressSNAT, chainRedirect}
	for i := range 1000 {
		names = append(names, svcChain(fmt.Sprintf("service-%d/network-%d-with-a-very-long-identifier-%0128d", i, i, i)))
	}
	for _, n := range names {
		if len(n) > maxChainName {
			t.Errorf("chain %q is %d characters, iptables allows %d", n, len(n), maxChainName)
		}
	}
}

func TestSvcChainIsStableAndDistinct(t *testing.T) {
	// The name of a key must not change within a version: a syncer finds
	// its chains again by it.
	if got, want := svcChain("www/ingress"), "MESH-SVC-T3B7FZFQ"; got != want {
		t.Errorf("svcChain(www/ingress) = %q, want %q", got, want)
	}
	shape := regexp.MustCompile(`^MESH-SVC-[A-Z2-7]{8}$`)
	seen := map[string]string{}
	for i := range 10000 {
		key := fmt.Sprintf("svc%d/net", i)
		n := svcChain(key)
		if !shape.MatchString(n) {
			t.Fatalf("svcChain(%q) = %q, not of the form MESH-SVC-XXXXXXXX", key, n)
		}
		if other, dup := seen[n]; dup {
			t.Fatalf("svcChain(%q) = svcChain(%q) = %q", key, other, n)
		}
		seen[n] = key
	}
}

func TestComment(t *testing.T) {
	for in, want := range map[string]string{"www": "www", "": "-", "my svc \"x\"": "my_svc__x_", "a/b.c-d_e": "a/b.c-d_e"} {
		if got := comment(in); got != want {
			t.Errorf("comment(%q) = %q, want %q", in, got, want)
		}
	}
}
