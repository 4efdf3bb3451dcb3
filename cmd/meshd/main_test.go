package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh"
	"github.com/spf13/pflag"
)

const testToken = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd-1awxwuwd3z9j1z3puu7rcgdbx"

// TestTokenFileFromEnvironment: $MESHD_TOKEN_FILE is --token-file's
// default, which the flag overrides, so that a unit's EnvironmentFile
// names the token's file and the token stays out of the command line.
func TestTokenFileFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, env string
		args      []string
		wantToken string
		wantErr   string
	}{
		{name: "from the environment", env: good, args: []string{"--join", "192.168.33.10"}, wantToken: testToken},
		{name: "flag overrides the environment", env: missing, args: []string{"--join", "192.168.33.10", "--token-file", good}, wantToken: testToken},
		{name: "missing file named by the environment", env: missing, args: []string{"--join", "192.168.33.10"}, wantErr: "--token-file"},
		{name: "bad token in the file", env: bad, args: []string{"--join", "192.168.33.10"}, wantErr: "--token"},
		{name: "environment and --token", env: good, args: []string{"--join", "192.168.33.10", "--token", testToken}, wantErr: "exclude each other"},
		{name: "unset", env: "", args: []string{"--join", "192.168.33.10"}, wantErr: "--join needs --token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u mesh.UserConfig
			var debug, version bool
			fs := newFlagSet(&u, &debug, &version, tt.env)
			if err := fs.Parse(append([]string{"--node-name", "node2", "--advertise-addr", "192.168.33.11"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			c, err := u.ToConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if c.Token != tt.wantToken {
				t.Errorf("token = %q, want %q", c.Token, tt.wantToken)
			}
		})
	}
}

// TestRunReadsTokenFileEnv: run itself takes the default from the
// environment (a missing file fails before anything starts).
func TestRunReadsTokenFileEnv(t *testing.T) {
	t.Setenv(tokenFileEnv, filepath.Join(t.TempDir(), "missing"))
	err := run([]string{"--node-name", "node2", "--advertise-addr", "192.168.33.11", "--join", "192.168.33.10"})
	if err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("err = %v, want a --token-file error", err)
	}
}

// TestManPageNamesEveryFlag: the hand-written meshd(8) in the Debian
// package documents every flag meshd has (meshd does not build on the
// machines that may build the package, so its page is not generated).
func TestManPageNamesEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../packaging/deb/meshd.8")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var u mesh.UserConfig
	var debug, version bool
	newFlagSet(&u, &debug, &version, "").VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(page, `\-\-`+strings.ReplaceAll(f.Name, "-", `\-`)) {
			t.Errorf("packaging/deb/meshd.8 does not document --%s", f.Name)
		}
	})
	if !strings.Contains(page, tokenFileEnv) {
		t.Errorf("packaging/deb/meshd.8 does not name $%s", tokenFileEnv)
	}
}

// TestFlowOffloadFlag: on unless given false, and only a boolean.
func TestFlowOffloadFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
		err  bool
	}{
		{nil, true, false},
		{[]string{"--flow-offload"}, true, false},
		{[]string{"--flow-offload=false"}, false, false},
		{[]string{"--flow-offload=true"}, true, false},
		{[]string{"--flow-offload=maybe"}, false, true},
	} {
		var u mesh.UserConfig
		var debug, version bool
		fs := newFlagSet(&u, &debug, &version, "")
		err := fs.Parse(append([]string{"--node-name", "node1", "--advertise-addr", "192.168.33.10"}, tt.args...))
		if (err != nil) != tt.err {
			t.Errorf("%v: err = %v", tt.args, err)
			continue
		}
		if err != nil {
			continue
		}
		c, err := u.ToConfig()
		if err != nil || c.FlowOffload != tt.want {
			t.Errorf("%v: FlowOffload = %v (%v), want %v", tt.args, c.FlowOffload, err, tt.want)
		}
	}
}
