package ca

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

func issueFor(t *testing.T, r *Root, nodeID, role string) (cert, key []byte) {
	t.Helper()
	key, cert, err := r.NewNode(nodeID, role, "c1", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestNodeCertificates(t *testing.T) {
	root, err := NewRoot("c1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d := root.Digest(); len(d) != 50 || strings.Trim(d, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("digest %q: want 50 base-36 characters", d)
	}
	cert, key := issueFor(t, root, "n1", api.RoleManager)
	id, err := NewIdentity(cert, key, [][]byte{root.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	if p := id.Peer(); p.NodeID != "n1" || p.Role != api.RoleManager || p.ClusterID != "c1" {
		t.Errorf("peer %+v", p)
	}
	if !strings.Contains(strings.Join(id.Leaf().DNSNames, " "), OUManager) {
		t.Errorf("a manager's certificate without the %s name: %v", OUManager, id.Leaf().DNSNames)
	}
	other, _ := NewRoot("c1", time.Now())
	if _, err := NewIdentity(cert, key, [][]byte{other.CertDER}); err == nil {
		t.Error("a certificate accepted under another root")
	}
	if _, err := root.Issue([]byte("junk"), "n2", api.RoleWorker, "c1", time.Hour, time.Now()); err == nil {
		t.Error("a garbage request signed")
	}
	noKey, _ := ParseRoot(root.CertDER, nil)
	_, csr, _ := NewKey("n3")
	if _, err := noKey.Issue(csr, "n3", api.RoleWorker, "c1", time.Hour, time.Now()); err == nil {
		t.Error("a root without its key signed")
	}
}

// TestCrossSignedRotation checks what a CA rotation relies on: a node
// that trusts only the old root verifies a certificate of the new one
// through the cross-signed certificate sent along, and the pinned check of
// a joining node finds the new root by its digest.
func TestCrossSignedRotation(t *testing.T) {
	old, _ := NewRoot("c1", time.Now())
	next, _ := NewRoot("c1", time.Now())
	cross, err := old.CrossSign(next, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leafDER, _ := issueFor(t, next, "m1", api.RoleManager)
	leaf, _ := x509.ParseCertificate(leafDER)
	crossCert, _ := x509.ParseCertificate(cross)
	oldOnly := x509.NewCertPool()
	oldOnly.AddCert(old.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(crossCert)
	inter.AddCert(next.Cert)
	opts := x509.VerifyOptions{Roots: oldOnly, Intermediates: inter, DNSName: OUManager}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("a node trusting the old root cannot verify the new root's certificate: %v", err)
	}
	opts.Intermediates = x509.NewCertPool()
	if _, err := leaf.Verify(opts); err == nil {
		t.Error("verified without the cross-signed certificate: the test proves nothing")
	}
	chain := [][]byte{leafDER, next.CertDER, cross, old.CertDER}
	if err := verifyPinned(chain, next.Digest(), time.Now()); err != nil {
		t.Errorf("pinned to the new root: %v", err)
	}
	if err := verifyPinned(chain, strings.Repeat("0", 50), time.Now()); !errors.Is(err, ErrWrongCA) {
		t.Errorf("pinned to an unknown root: %v, want ErrWrongCA", err)
	}
}

func TestTrustChangesWithRootsAndKeys(t *testing.T) {
	a := Trust([][]byte{[]byte("r1")}, [][]byte{[]byte("k1")})
	for _, other := range []string{
		Trust([][]byte{[]byte("r2")}, [][]byte{[]byte("k1")}),
		Trust([][]byte{[]byte("r1")}, [][]byte{[]byte("k2")}),
		Trust([][]byte{[]byte("r1")}, [][]byte{[]byte("k1"), []byte("k2")}),
		Trust([][]byte{[]byte("r1"), []byte("k1")}, nil),
	} {
		if other == a {
			t.Errorf("two trusts named alike: %s", a)
		}
	}
}
