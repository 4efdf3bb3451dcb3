package manager

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshd/meshd/internal/portmux"
)

type staticSecrets struct {
	own  string
	peer map[string]string
}

func (s staticSecrets) Own() []byte { return []byte(s.own) }
func (s staticSecrets) Of(addr string) ([]byte, bool) {
	v, ok := s.peer[addr]
	return []byte(v), ok
}

// newLayer is a raft layer on a loopback cluster port.
func newLayer(t *testing.T, secrets Secrets) (*raftLayer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := portmux.New(ln, portmux.Config{Magic: RaftMagic})
	go mux.Serve()
	t.Cleanup(func() { ln.Close() })
	cert, err := ephemeralCert()
	if err != nil {
		t.Fatal(err)
	}
	l := &raftLayer{ln: mux.Magic(), addr: ln.Addr(), secrets: secrets, cert: cert, ready: make(chan net.Conn),
		done: make(chan struct{}), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go l.acceptLoop()
	return l, ln.Addr().String()
}

func TestRaftLayerAuthenticatesBothEnds(t *testing.T) {
	server, addr := newLayer(t, staticSecrets{own: "server-secret"})
	go func() {
		for {
			c, err := server.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	tests := []struct {
		name    string
		secret  string // what the dialer believes the server's secret is
		wantErr string
	}{
		{"right secret", "server-secret", ""},
		{"wrong secret", "guessed", "refused this node's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := newLayer(t, staticSecrets{own: "client", peer: map[string]string{addr: tt.secret}})
			c, err := client.Dial(raft.ServerAddress(addr), 2*time.Second)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dial: err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Errorf("echo over the authenticated connection: %q, %v", buf, err)
			}
		})
	}
	t.Run("unknown address", func(t *testing.T) {
		client, _ := newLayer(t, staticSecrets{own: "client"})
		if _, err := client.Dial(raft.ServerAddress(addr), time.Second); err == nil || !strings.Contains(err.Error(), "no manager known") {
			t.Errorf("dial an unknown manager: %v", err)
		}
	})
	t.Run("plain raft without tls", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{RaftMagic, 0, 0, 0, 0, 0, 0}) // raft's own framing, no TLS
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("the server should close a connection that is not TLS: %v", err)
		}
	})
}
