package manager

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshd/meshd/internal/portmux"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/ca"
)

// nodeIdentity issues a node certificate from root.
func nodeIdentity(t *testing.T, root *ca.Root, nodeID, role, cluster string) *ca.Identity {
	t.Helper()
	key, cert, err := root.NewNode(nodeID, role, cluster, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.NewIdentity(cert, key, [][]byte{root.CertDER})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newLayer is a raft layer on a loopback cluster port.
func newLayer(t *testing.T, id *ca.Identity) (*raftLayer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := portmux.New(ln, portmux.Config{Magic: RaftMagic})
	go mux.Serve()
	t.Cleanup(func() { ln.Close() })
	authorize := func(p ca.Peer) error {
		if p.Role != api.RoleManager || p.ClusterID != "c1" {
			return errors.New("not a manager of c1")
		}
		return nil
	}
	l, err := newRaftLayer(mux.Magic(), ln.Addr().String(), id, authorize, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return l, ln.Addr().String()
}

func TestRaftLayerIsMutualTLSBetweenManagers(t *testing.T) {
	root, err := ca.NewRoot("c1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewRoot("c2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, managerAddr := newLayer(t, nodeIdentity(t, root, "m1", api.RoleManager, "c1"))
	_, workerAddr := newLayer(t, nodeIdentity(t, root, "w9", api.RoleWorker, "c1"))
	tests := []struct {
		name    string
		client  *ca.Identity
		addr    string
		wantErr string // "" = the echo works
	}{
		{"manager to manager", nodeIdentity(t, root, "m2", api.RoleManager, "c1"), managerAddr, ""},
		{"worker to manager", nodeIdentity(t, root, "w3", api.RoleWorker, "c1"), managerAddr, "closed"},
		{"another cluster's manager", nodeIdentity(t, other, "x1", api.RoleManager, "c2"), managerAddr, "tls"},
		{"manager to a worker", nodeIdentity(t, root, "m2", api.RoleManager, "c1"), workerAddr, "swarm-manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := newLayer(t, tt.client)
			c, err := client.Dial(raft.ServerAddress(tt.addr), 2*time.Second)
			if err == nil {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = io.WriteString(c, "ping")
				buf := make([]byte, 4)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				if err == nil && string(buf) != "ping" {
					err = errors.New("echo mangled")
				}
				if err != nil && strings.Contains(err.Error(), "EOF") || err != nil && strings.Contains(err.Error(), "reset") {
					err = errors.New("connection closed by the server: " + err.Error())
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("echo over raft's connection: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("raft without tls", func(t *testing.T) {
		c, err := net.Dial("tcp", managerAddr)
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
