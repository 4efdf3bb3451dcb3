package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/meshd/meshd/mesh/ca"
)

// RaftMagic is the first byte of a raft connection on the cluster port
// (see internal/portmux); TLS follows. No HTTP request or TLS handshake
// starts with it.
const RaftMagic byte = 0xF2

// handshakeTimeout bounds the TLS handshake of a raft connection.
const handshakeTimeout = 5 * time.Second

// raftLayer is raft's stream layer over the cluster port: mutual TLS with
// node certificates of the cluster's CA, and only managers on both ends
// (the dialer asks for a manager's certificate by its DNS name; the
// acceptor checks the caller's role with authorize).
type raftLayer struct {
	ln        net.Listener // TLS, handshakes bounded and done (ca.Listener)
	addr      net.Addr
	id        *ca.Identity
	authorize func(ca.Peer) error
	log       *slog.Logger
}

// maxRaftHandshakes bounds the raft handshakes under way at once.
const maxRaftHandshakes = 16

// NewTransport returns raft's network transport over ln (the cluster
// port's raft side), advertising addr. authorize decides whether a caller
// whose certificate verified may take part in raft.
func NewTransport(ln net.Listener, addr string, id *ca.Identity, authorize func(ca.Peer) error, log *slog.Logger) (raft.Transport, error) {
	l, err := newRaftLayer(ln, addr, id, authorize, log)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: l, MaxPool: 3,
		Timeout: 10 * time.Second, Logger: newRaftLogger(log)}), nil
}

func newRaftLayer(ln net.Listener, addr string, id *ca.Identity, authorize func(ca.Peer) error, log *slog.Logger) (*raftLayer, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft address %s: %w", addr, err)
	}
	return &raftLayer{ln: ca.Listener(ln, id.ServerConfig(true), maxRaftHandshakes, handshakeTimeout),
		addr: tcp, id: id, authorize: authorize, log: log}, nil
}

// Accept returns the next connection whose caller may take part in raft;
// the others are closed.
func (l *raftLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if err := l.admit(c); err != nil {
			l.log.Warn("refused raft connection", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			continue
		}
		return c, nil
	}
}

func (l *raftLayer) admit(c net.Conn) error {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return errors.New("not a TLS connection")
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("no client certificate")
	}
	peer, err := ca.PeerOf(certs[0])
	if err != nil {
		return err
	}
	return l.authorize(peer)
}

// Dial connects to the manager at address over mutual TLS.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{RaftMagic}); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft %s: %w", address, err)
	}
	tc := tls.Client(c, l.id.ClientConfig())
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft %s: tls handshake: %w", address, err)
	}
	return tc, nil
}

func (l *raftLayer) Close() error { return l.ln.Close() }

func (l *raftLayer) Addr() net.Addr { return l.addr }

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
