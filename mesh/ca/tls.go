package ca

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Identity is a node's TLS identity: its key and certificate and the roots
// it trusts. Renewal and a CA rotation replace them while connections
// come and go, so every TLS configuration reads them at handshake time.
type Identity struct {
	mu       sync.RWMutex
	cert     tls.Certificate
	leaf     *x509.Certificate
	peer     Peer
	roots    *x509.CertPool
	rootsDER [][]byte
}

// NewIdentity reads a node key (PKCS #8), its certificate and the roots.
func NewIdentity(certDER, keyDER []byte, rootsDER [][]byte) (*Identity, error) {
	id := &Identity{}
	if err := id.Set(certDER, keyDER, rootsDER); err != nil {
		return nil, err
	}
	return id, nil
}

// Set replaces the certificate, key and roots; the certificate must chain
// to one of the roots.
func (id *Identity) Set(certDER, keyDER []byte, rootsDER [][]byte) error {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return errors.New("node key: not a signing key")
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(signer.Public()) {
		return errors.New("node certificate: not for this node's key")
	}
	pool := x509.NewCertPool()
	chain := [][]byte{certDER}
	for _, der := range rootsDER {
		root, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("root CA certificate: %w", err)
		}
		pool.AddCert(root)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("node certificate does not chain to the cluster's CA: %w", err)
	}
	// The chain sent ends with the roots, so that a joining node can pin
	// the one its token names.
	chain = append(chain, rootsDER...)
	peer, err := PeerOf(leaf)
	if err != nil {
		return err
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	id.cert = tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	id.leaf, id.peer, id.roots, id.rootsDER = leaf, peer, pool, rootsDER
	return nil
}

// Peer is who this node's certificate says it is.
func (id *Identity) Peer() Peer {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.peer
}

// Leaf is this node's certificate.
func (id *Identity) Leaf() *x509.Certificate {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.leaf
}

// RootsDER are the roots this node trusts.
func (id *Identity) RootsDER() [][]byte {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.rootsDER
}

func (id *Identity) current() (*tls.Certificate, *x509.CertPool) {
	id.mu.RLock()
	defer id.mu.RUnlock()
	c := id.cert
	return &c, id.roots
}

// ServerConfig is the cluster port's: this node's certificate, and a
// client certificate verified against the roots when one is given
// (require makes it mandatory, as raft does; the HTTP API lets a joining
// node in without one, to present its token).
func (id *Identity) ServerConfig(require bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if require {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, roots := id.current()
			return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert},
				ClientAuth: auth, ClientCAs: roots}, nil
		}}
}

// ClientConfig is for a connection to a manager: this node's certificate,
// and the server's verified against the roots and required to be a
// manager's (its DNS names carry its role).
func (id *Identity) ClientConfig() *tls.Config {
	cert, roots := id.current()
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}, RootCAs: roots,
		ServerName: OUManager}
}

// ErrWrongCA is a joining node's refusal of a manager whose CA is not the
// one its token names.
var ErrWrongCA = errors.New("the manager's CA is not the one the token names (another cluster, or a man in the middle)")

// PinnedConfig is a joining node's: no certificate yet, and the manager's
// accepted only if it chains to the root whose digest the token carries.
func PinnedConfig(digest string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13,
		// The standard verification cannot pin a root by its digest; the
		// whole check is done below, with the pinned root as the only
		// trusted one.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, digest, time.Now())
		}}
}

func verifyPinned(raw [][]byte, digest string, now time.Time) error {
	if len(raw) == 0 {
		return errors.New("the manager sent no certificate")
	}
	pool := x509.NewCertPool()
	found := false
	for _, der := range raw[1:] {
		if Digest(der) != digest {
			continue
		}
		root, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("the manager's CA certificate: %w", err)
		}
		pool.AddCert(root)
		found = true
	}
	if !found {
		return ErrWrongCA
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("the manager's certificate: %w", err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: OUManager, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("the manager's certificate: %w", err)
	}
	return nil
}
