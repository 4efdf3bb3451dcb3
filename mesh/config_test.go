package mesh

import (
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/lb"
)

func TestUserConfigToConfig(t *testing.T) {
	const tok = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd-1awxwuwd3z9j1z3puu7rcgdbx"
	base := UserConfig{NodeName: "node1", AdvertiseAddr: "192.168.33.10"}
	ownGroup, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatalf("this process's group: %v", err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	worldReadable := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(worldReadable, []byte(tok+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(worldReadable, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(u *UserConfig)
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", edit: func(u *UserConfig) {}, check: func(t *testing.T, c Config) {
			if c.RunDir != DefaultRunDir || c.DataPathPort != 4789 || c.LBMode != "auto" || c.ListenAddr.String() != "0.0.0.0:2377" || c.JoinTimeout != 10*time.Second {
				t.Errorf("defaults: got %+v", c)
			}
		}},
		{name: "join adds port", edit: func(u *UserConfig) { u.Join, u.Token = "192.168.33.10", tok }, check: func(t *testing.T, c Config) {
			if c.Join != "192.168.33.10:2377" {
				t.Errorf("join = %q, want 192.168.33.10:2377", c.Join)
			}
		}},
		{name: "join without token", edit: func(u *UserConfig) { u.Join = "192.168.33.10" }, wantErr: "--join needs --token"},
		{name: "bad token", edit: func(u *UserConfig) { u.Token = "hunter2" }, wantErr: "--token"},
		{name: "bad advertise", edit: func(u *UserConfig) { u.AdvertiseAddr = "node1" }, wantErr: "--advertise-addr"},
		{name: "v6 advertise", edit: func(u *UserConfig) { u.AdvertiseAddr = "fe80::1" }, wantErr: "--advertise-addr"},
		{name: "data path port low", edit: func(u *UserConfig) { u.DataPathPort = 80 }, wantErr: "--data-path-port"},
		{name: "data path port high", edit: func(u *UserConfig) { u.DataPathPort = 50000 }, wantErr: "--data-path-port"},
		{name: "lb mode", edit: func(u *UserConfig) { u.LBMode = "nft" }, wantErr: "--lb-mode"},
		{name: "listen port", edit: func(u *UserConfig) { u.ListenAddr = "0.0.0.0:99999" }, wantErr: "--listen-addr"},
		{name: "node name", edit: func(u *UserConfig) { u.NodeName = "node 1" }, wantErr: "--node-name"},
		{name: "join bad port", edit: func(u *UserConfig) { u.Join, u.Token = "10.0.0.1:x", tok }, wantErr: "--join"},
		{name: "init and join", edit: func(u *UserConfig) { u.Init, u.Join, u.Token = true, "192.168.33.10", tok }, wantErr: "exclude"},
		{name: "init with a token", edit: func(u *UserConfig) { u.Init, u.Token = true, tok }, wantErr: "--token is for --join"},
		{name: "token file", edit: func(u *UserConfig) { u.Join, u.TokenFile = "192.168.33.10", tokenFile }, check: func(t *testing.T, c Config) {
			if c.Token != tok {
				t.Errorf("token from the file = %q, want %q", c.Token, tok)
			}
		}},
		{name: "token and token file", edit: func(u *UserConfig) { u.Token, u.TokenFile = tok, tokenFile }, wantErr: "exclude"},
		{name: "token from the environment", edit: func(u *UserConfig) { u.Join, u.TokenEnv = "192.168.33.10", tok+"\n" }, check: func(t *testing.T, c Config) {
			if c.Token != tok {
				t.Errorf("token from $MESHD_TOKEN = %q, want %q", c.Token, tok)
			}
		}},
		{name: "environment and token file", edit: func(u *UserConfig) { u.TokenEnv, u.TokenFile = tok, tokenFile },
			wantErr: "--token-file and $MESHD_TOKEN exclude each other"},
		{name: "environment and token", edit: func(u *UserConfig) { u.TokenEnv, u.Token = tok, tok },
			wantErr: "--token and $MESHD_TOKEN exclude each other"},
		{name: "bad token from the environment", edit: func(u *UserConfig) { u.Join, u.TokenEnv = "192.168.33.10", "hunter2" }, wantErr: "--token"},
		{name: "no socket group", edit: func(u *UserConfig) {}, check: func(t *testing.T, c Config) {
			if c.SocketGroup != "" {
				t.Errorf("socket group %q by default, want none (root only)", c.SocketGroup)
			}
		}},
		{name: "socket group by name", edit: func(u *UserConfig) { u.SocketGroup = ownGroup.Name }, check: func(t *testing.T, c Config) {
			if c.SocketGroup != ownGroup.Name || strconv.Itoa(c.SocketGID) != ownGroup.Gid {
				t.Errorf("socket group %q (%d), want %s (%s)", c.SocketGroup, c.SocketGID, ownGroup.Name, ownGroup.Gid)
			}
		}},
		{name: "socket group by ID", edit: func(u *UserConfig) { u.SocketGroup = ownGroup.Gid }, check: func(t *testing.T, c Config) {
			if c.SocketGroup != ownGroup.Name || strconv.Itoa(c.SocketGID) != ownGroup.Gid {
				t.Errorf("socket group %q (%d), want %s (%s)", c.SocketGroup, c.SocketGID, ownGroup.Name, ownGroup.Gid)
			}
		}},
		{name: "unknown socket group", edit: func(u *UserConfig) { u.SocketGroup = "no-such-group-x9" }, wantErr: `--socket-group "no-such-group-x9": no such group`},
		{name: "missing token file", edit: func(u *UserConfig) { u.TokenFile = "/nonexistent/token" }, wantErr: "--token-file"},
		{name: "metrics off by default", edit: func(u *UserConfig) {}, check: func(t *testing.T, c Config) {
			if c.MetricsAddr.IsValid() {
				t.Errorf("metrics addr %v by default, want none", c.MetricsAddr)
			}
		}},
		{name: "metrics addr", edit: func(u *UserConfig) { u.MetricsAddr = "127.0.0.1:9323" }, check: func(t *testing.T, c Config) {
			if got := c.MetricsAddr.String(); got != "127.0.0.1:9323" {
				t.Errorf("metrics addr = %s, want 127.0.0.1:9323", got)
			}
		}},
		{name: "metrics addr without port", edit: func(u *UserConfig) { u.MetricsAddr = "127.0.0.1" }, wantErr: `--metrics-addr "127.0.0.1": want IP:port`},
		{name: "metrics addr by name", edit: func(u *UserConfig) { u.MetricsAddr = "localhost:9323" }, wantErr: "want IP:port"},
		{name: "metrics on the cluster port", edit: func(u *UserConfig) { u.MetricsAddr = "0.0.0.0:2377" }, wantErr: "port 2377 is the cluster API's"},
		{name: "metrics on the gossip port", edit: func(u *UserConfig) { u.MetricsAddr = "[::1]:7946" }, wantErr: "port 7946 is gossip's"},
		{name: "conntrack max by default", edit: func(u *UserConfig) {}, check: func(t *testing.T, c Config) {
			if want := lb.DefaultConntrackMax(runtime.NumCPU()); c.ConntrackMax != want || want < 131072 {
				t.Errorf("conntrack max %d by default, want %d (at least 131072)", c.ConntrackMax, want)
			}
		}},
		{name: "conntrack max given", edit: func(u *UserConfig) { u.ConntrackMax = "262144" }, check: func(t *testing.T, c Config) {
			if c.ConntrackMax != 262144 {
				t.Errorf("conntrack max %d, want 262144", c.ConntrackMax)
			}
		}},
		{name: "conntrack left alone", edit: func(u *UserConfig) { u.ConntrackMax = "0" }, check: func(t *testing.T, c Config) {
			if c.ConntrackMax != 0 {
				t.Errorf("conntrack max %d, want 0 (the kernel's)", c.ConntrackMax)
			}
		}},
		{name: "conntrack max too small", edit: func(u *UserConfig) { u.ConntrackMax = "100" }, wantErr: `--conntrack-max "100": want 0 (leave the kernel's) or 1024 to 16777216`},
		{name: "conntrack max not a count", edit: func(u *UserConfig) { u.ConntrackMax = "lots" }, wantErr: `--conntrack-max "lots"`},
		{name: "conntrack max negative", edit: func(u *UserConfig) { u.ConntrackMax = "-1" }, wantErr: `--conntrack-max "-1"`},
		{name: "world-readable token file", edit: func(u *UserConfig) { u.Join, u.TokenFile = "192.168.33.10", worldReadable },
			wantErr: "readable by every user (mode 0644); chmod 600 it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base
			tt.edit(&u)
			c, err := u.ToConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
