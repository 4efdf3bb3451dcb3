// Package ca is the cluster's trust, as Swarm builds it: a root CA made at
// swarm init and kept by the managers, join tokens that carry the root's
// digest (so a joining node checks the CA before it sends the secret),
// node certificates whose role (worker or manager) is in the certificate,
// and the TLS configurations every cluster connection uses. It is crypto/
// x509 and crypto/tls of the standard library; nothing here invents a
// primitive.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// The organisational units of node certificates, as swarmkit names them;
// a node certificate's DNS names are its role's OU and its node ID, so a
// client asking for "swarm-manager" accepts only a manager.
const (
	OUManager = "swarm-manager"
	OUWorker  = "swarm-worker"
)

// DefaultCertExpiry is a node certificate's lifetime (docker's default).
const DefaultCertExpiry = 90 * 24 * time.Hour

// rootLifetime is the root CA's lifetime (swarmkit's is 20 years).
const rootLifetime = 20 * 365 * 24 * time.Hour

// Root is a root CA: its certificate and, on managers, its key.
type Root struct {
	Cert    *x509.Certificate
	CertDER []byte
	Key     crypto.Signer
	KeyDER  []byte // PKCS #8
}

// NewRoot makes a root CA for a cluster.
func NewRoot(clusterID string, now time.Time) (*Root, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{CommonName: "swarm-ca", Organization: []string{clusterID}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(rootLifetime),
		// One intermediate below it: the next root, cross-signed, while a
		// rotation is under way.
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	return ParseRoot(der, keyDER)
}

// ParseRoot reads a root CA; keyDER may be nil (a node without the key).
func ParseRoot(certDER, keyDER []byte) (*Root, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("root CA certificate: not a CA")
	}
	r := &Root{Cert: cert, CertDER: certDER, KeyDER: keyDER}
	if keyDER != nil {
		k, err := x509.ParsePKCS8PrivateKey(keyDER)
		if err != nil {
			return nil, fmt.Errorf("root CA key: %w", err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("root CA key: not a signing key")
		}
		r.Key = signer
	}
	return r, nil
}

// Digest is the root's digest as join tokens carry it: SHA-256 of its
// certificate, base 36, 50 characters.
func Digest(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	s := new(big.Int).SetBytes(sum[:]).Text(36)
	for len(s) < 50 {
		s = "0" + s
	}
	return s
}

// Digest is this root's digest.
func (r *Root) Digest() string { return Digest(r.CertDER) }

// Issue signs a node certificate for the public key in csrDER (a PKCS #10
// request, whose signature is checked), valid for expiry: CN the node ID,
// OU its role, O the cluster, DNS names the role's OU and the node ID.
func (r *Root) Issue(csrDER []byte, nodeID, role, clusterID string, expiry time.Duration, now time.Time) ([]byte, error) {
	if r.Key == nil {
		return nil, errors.New("issue certificate: this node has no CA key")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, api.Invalid("certificate request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, api.Invalid("certificate request: %v", err)
	}
	ou := OUWorker
	if role == api.RoleManager {
		ou = OUManager
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(expiry)
	if notAfter.After(r.Cert.NotAfter) {
		notAfter = r.Cert.NotAfter
	}
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{ou}, Organization: []string{clusterID}},
		DNSNames:  []string{ou, nodeID},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, csr.PublicKey, r.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return der, nil
}

// CrossSign certifies next's key with this root: the same subject and key
// as next, issued by this root. During a rotation managers send it with
// their certificates, so that a node still trusting only this root can
// verify a certificate of the next one (Swarm's rotation does the same).
func (r *Root) CrossSign(next *Root, now time.Time) ([]byte, error) {
	if r.Key == nil {
		return nil, errors.New("cross-sign: this node has no CA key")
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := *next.Cert
	tmpl.SerialNumber, tmpl.NotBefore = serial, now.Add(-time.Hour)
	// Both roots have the same name, so x509 would keep the template's
	// authority key ID (next's own): name this root as the signer.
	tmpl.AuthorityKeyId = r.Cert.SubjectKeyId
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true // only node certificates below it
	if tmpl.NotAfter.After(r.Cert.NotAfter) {
		tmpl.NotAfter = r.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, r.Cert, next.Cert.PublicKey, r.Key)
	if err != nil {
		return nil, fmt.Errorf("cross-sign the new root: %w", err)
	}
	return der, nil
}

// NewNode makes a key for a node and signs its certificate at once: the
// first manager's, whose CA is made on the same machine (and tests').
func (r *Root) NewNode(nodeID, role, clusterID string, expiry time.Duration, now time.Time) (keyDER, certDER []byte, err error) {
	keyDER, csr, err := NewKey(nodeID)
	if err != nil {
		return nil, nil, err
	}
	certDER, err = r.Issue(csr, nodeID, role, clusterID, expiry, now)
	if err != nil {
		return nil, nil, err
	}
	return keyDER, certDER, nil
}

// Peer is who a verified node certificate says its holder is.
type Peer struct {
	NodeID, Role, ClusterID string
	NotAfter                time.Time
}

// PeerOf reads a node certificate (verified by the TLS handshake).
func PeerOf(cert *x509.Certificate) (Peer, error) {
	p := Peer{NodeID: cert.Subject.CommonName, NotAfter: cert.NotAfter}
	switch {
	case slices.Contains(cert.Subject.OrganizationalUnit, OUManager):
		p.Role = api.RoleManager
	case slices.Contains(cert.Subject.OrganizationalUnit, OUWorker):
		p.Role = api.RoleWorker
	default:
		return p, errors.New("not a node certificate: no role")
	}
	if len(cert.Subject.Organization) != 1 || p.NodeID == "" {
		return p, errors.New("not a node certificate: no node or cluster")
	}
	p.ClusterID = cert.Subject.Organization[0]
	return p, nil
}

// NewKey makes a node key and a certificate request for it.
func NewKey(nodeID string) (keyDER, csrDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeID}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("node key: %w", err)
	}
	return keyDER, csrDER, nil
}

// CSRFor makes a certificate request for an existing node key (renewal
// keeps the key).
func CSRFor(keyDER []byte, nodeID string) ([]byte, error) {
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("node key: not a signing key")
	}
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeID}}, signer)
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n, nil
}

// Trust names what a node must hold to be current: the roots it trusts
// and the gossip keys, in order. Managers publish the cluster's; a node
// holding another renews its certificate and gets both.
func Trust(caCerts, gossipKeys [][]byte) string {
	h := sha256.New()
	for _, c := range caCerts {
		h.Write([]byte(Digest(c)))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	for _, k := range gossipKeys {
		h.Write(k)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
