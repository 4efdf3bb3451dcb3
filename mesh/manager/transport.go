package manager

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// RaftMagic is the first byte of a raft connection on the cluster port
// (see internal/portmux): no HTTP request starts with it.
const RaftMagic byte = 0xF2

// exporterLabel names the TLS keying material both ends of a raft
// connection prove they hold with the node secret.
const exporterLabel = "EXPORTER-meshd-raft-v1"

// handshakeTimeout bounds the TLS handshake and the proofs.
const handshakeTimeout = 5 * time.Second

// Secrets are what a raft connection is authenticated with.
type Secrets interface {
	// Own is this node's secret.
	Own() []byte
	// Of is the secret of the manager whose raft address is addr.
	Of(addr string) ([]byte, bool)
}

// raftLayer is raft's stream layer over the cluster port. Each connection
// is TLS 1.3 for privacy; both ends then prove they know the accepting
// node's secret with an HMAC over the TLS session's exported keying
// material, so a proof cannot be replayed on another connection or
// relayed by a man in the middle. Only a manager (which holds every
// node's secret in its state) or the node itself can pass. Mutual TLS
// with cluster certificates replaces this when the cluster has a CA.
type raftLayer struct {
	ln      net.Listener // connections that sent RaftMagic, magic consumed
	addr    net.Addr
	secrets Secrets
	cert    tls.Certificate
	ready   chan net.Conn
	done    chan struct{}
	log     *slog.Logger
}

// NewTransport returns raft's network transport over ln (the cluster
// port's raft side), advertising addr.
func NewTransport(ln net.Listener, addr string, secrets Secrets, log *slog.Logger) (raft.Transport, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft address %s: %w", addr, err)
	}
	cert, err := ephemeralCert()
	if err != nil {
		return nil, err
	}
	l := &raftLayer{ln: ln, addr: tcp, secrets: secrets, cert: cert, ready: make(chan net.Conn), done: make(chan struct{}), log: log}
	go l.acceptLoop()
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: l, MaxPool: 3,
		Timeout: 10 * time.Second, Logger: newRaftLogger(log)}), nil
}

func (l *raftLayer) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
			default:
				close(l.done)
			}
			return
		}
		go func() {
			tc, err := l.serverHandshake(c)
			if err != nil {
				l.log.Warn("refused raft connection", "remote", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			select {
			case l.ready <- tc:
			case <-l.done:
				tc.Close()
			}
		}()
	}
}

func (l *raftLayer) serverHandshake(c net.Conn) (net.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{l.cert}, MinVersion: tls.VersionTLS13})
	ekm, err := handshake(tc)
	if err != nil {
		return nil, err
	}
	key := l.secrets.Own()
	if len(key) == 0 {
		return nil, errors.New("this node has no secret yet")
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(tc, got); err != nil {
		return nil, fmt.Errorf("read proof: %w", err)
	}
	if !hmac.Equal(got, proof(key, "client", ekm)) {
		return nil, errors.New("wrong proof: the caller is not a manager of this cluster")
	}
	if _, err := tc.Write(proof(key, "server", ekm)); err != nil {
		return nil, fmt.Errorf("write proof: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// Dial connects to the manager at address and checks it knows its own
// secret, as this node knows it.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	key, ok := l.secrets.Of(string(address))
	if !ok {
		return nil, fmt.Errorf("dial raft %s: no manager known at that address", address)
	}
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if _, err := c.Write([]byte{RaftMagic}); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft %s: %w", address, err)
	}
	// The server's certificate is not checked: it is self-signed and only
	// carries the encryption. The server is authenticated by its proof
	// below, which needs its secret and this very TLS session.
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // see above
	ekm, err := handshake(tc)
	if err == nil {
		_, err = tc.Write(proof(key, "client", ekm))
	}
	got := make([]byte, sha256.Size)
	if err == nil {
		if _, rerr := io.ReadFull(tc, got); rerr != nil {
			err = fmt.Errorf("no proof back (the manager refused this node's, or it is not a manager): %w", rerr)
		}
	}
	if err == nil && !hmac.Equal(got, proof(key, "server", ekm)) {
		err = errors.New("wrong proof: not the manager this cluster knows at that address")
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft %s: %w", address, err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *raftLayer) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return l.ln.Close()
}

func (l *raftLayer) Addr() net.Addr { return l.addr }

func handshake(tc *tls.Conn) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("tls exporter: %w", err)
	}
	return ekm, nil
}

func proof(key []byte, side string, ekm []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(side))
	m.Write([]byte{0})
	m.Write(ekm)
	return m.Sum(nil)
}

// ephemeralCert is a self-signed certificate made at start, for the TLS
// encryption of raft connections.
func ephemeralCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raft tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raft tls serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "meshd raft"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raft tls certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// newRaftLogger sends raft's log lines to log, at their own level.
func newRaftLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: slogWriter{log}, DisableTime: true})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(line, "[ERROR]"):
		level = slog.LevelError
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[DEBUG]"), strings.HasPrefix(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	if i := strings.Index(line, "raft: "); i >= 0 {
		line = line[i+len("raft: "):]
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
