// Package tutorials runs the tutorials' scripts as a teacher does with
// --lab-up: each against a fresh lab of its own prefix, which the script
// brings up and takes down. Besides the scripts' exit status and their
// own checks, it looks for a few lines of what they print and for
// anything their lab left behind. There is no Go code here but the test.
package tutorials

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/lab"
)

// binDir holds meshd and meshctl, built for this run (testutil.LabCommands).
var binDir string

func TestMain(m *testing.M) {
	dir, remove, err := testutil.LabCommands()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tutorials:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	remove()
	os.Exit(code)
}

// TestTutorials runs each script with --lab-up. The lines it looks for
// are regular expressions, each matched against a whole line of the
// output: a step as printed, what it printed, the closing tally.
func TestTutorials(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   []string
	}{
		{"000-swarm-networks.sh", []string{
			`host\$ meshctl lab up --nodes 2 --no-swarm`,
			`node1\$ meshctl swarm init --advertise-addr 192\.168\.33\.10`,
			`node2\$ meshctl swarm join --token SWMTKN-1-\S+ 192\.168\.33\.10:2377`,
			`This node joined a swarm as a worker\.`,
			`node1\$ meshctl network create --driver overlay ovnet`,
			`verify: Service converged`,
			`node1\$ nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t mangle -nvL`,
			`FWM  256 rr`,
			`  ok       the embedded DNS answers tasks\.www with both tasks`,
			`all 13 checks passed`,
			`host\$ meshctl lab down`,
		}},
		{"001-container-network-model.sh", []string{
			`node1\$ meshctl run -d --name es --net dev elasticsearch:2`,
			`64 bytes from 172\.\d+\.\d+\.\d+: seq=0 .*`,
			`<p>This page has been viewed \d+ times\.</p>`,
			`ping: bad address 'es'`,
			`[0-9.]+\.in-addr\.arpa\s+name = hello\.prod`,
			`all 9 checks passed`,
		}},
		{"002-overlay.sh", []string{
			`node1\$ meshctl network create -d overlay --subnet 192\.168\.200\.0/24 demonet`,
			`4 packets transmitted, 4 received, 0% packet loss.*`,
			`.* IP 192\.168\.200\.\d+ > 192\.168\.200\.\d+: ICMP echo request, .*`,
			`\s+192\.168\.33\.1\d\.\d+ > 192\.168\.33\.1\d\.4789: .*VXLAN, flags \[I\] \(0x08\), vni 4097`,
			`<title>Welcome to nginx!</title>`,
			`all 11 checks passed`,
		}},
		{"003-ingress.sh", []string{
			`node3\$ meshctl swarm join --token SWMTKN-1-\S+ 192\.168\.33\.10:2377`,
			`\S+\s+web\s+replicated\s+2/2\s+containous/whoami:latest\s+\*:8080->80/tcp`,
			`Hostname: [0-9a-f]{12}`,
			`default via 172\.18\.0\.1 dev eth1 ?`,
			`  ok       port 8080 on 192\.168\.33\.12 answers from both tasks in turn`,
			`all 9 checks passed`,
		}},
	} {
		t.Run(tc.script, func(t *testing.T) {
			out, err := runScript(t, tc.script, "--lab-up")
			if err != nil {
				t.Fatalf("%s --lab-up: %v\n%s", tc.script, err, tail(out, 80))
			}
			for _, want := range tc.want {
				if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
					t.Errorf("%s printed no line matching %s", tc.script, want)
				}
			}
			if t.Failed() {
				t.Logf("what %s printed:\n%s", tc.script, out)
			}
		})
	}
}

// A check whose observable is absent fails the tutorial, after polling it
// for TUT_CHECK_TIMEOUT seconds (3 here), and the lab it brought up is
// taken down all the same.
func TestCheckFails(t *testing.T) {
	script := `set -euo pipefail
TUT_CHECK_TIMEOUT=3
. ./lib.sh
tutorial_init 1 --lab-up
check "a service answers on port 9999" client "curl -s -m 1 192.168.33.10:9999" "^Hostname: "
check "node1 is 192.168.33.10" node1 "ip -br addr" " 192\.168\.33\.10/24 "
finish`
	out, err := runScript(t, "-c", script)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("a tutorial with a missing observable ended with %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		`  \S*MISSING\S*  a service answers on port 9999`,
		`           client\$ curl -s -m 1 192\.168\.33\.10:9999`,
		`  ok       node1 is 192\.168\.33\.10`,
		`\S*1 of 2 checks FAILED\S*`,
		`host\$ meshctl lab down`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("no line matching %s in:\n%s", want, out)
		}
	}
}

// With --vagrant, a step on a node is "vagrant ssh NODE --no-tty -c
// 'sudo sh -c CMD'", CMD quoted so that the VM's shell hands it to sh
// unchanged, and a step on the client runs on this machine. A fake
// vagrant checks its arguments and runs the command here, through a fake
// sudo; no VM, no root needed.
func TestVagrantSteps(t *testing.T) {
	fake := t.TempDir()
	for name, body := range map[string]string{
		"vagrant": `[ $# -eq 5 ] && [ "$1 $3 $4" = "ssh --no-tty -c" ] || { echo "fake vagrant: unexpected arguments: $*" >&2; exit 2; }
echo "$2" >>"$(dirname "$0")/calls"
echo "[vagrant ssh $2]"
exec sh -c "$5"`,
		"sudo": `exec "$@"`,
	} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `set -euo pipefail
. ./lib.sh
tutorial_init 2 --vagrant
run node2 "printf '%s|' \"it's\" '\$HOME' 'a  b'; echo"
check "the client is this machine, the Vagrantfile beside" client 'echo "$VAGRANT_CWD"' '/tutorials/\.\./vagrant$'
finish`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "VAGRANT_CWD=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`node2\$ printf '%s\|' "it's" '\$HOME' 'a  b'; echo`,
		`\[vagrant ssh node2\]`,
		`it's\|\$HOME\|a  b\|`,
		`  ok       the client is this machine, the Vagrantfile beside`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).Match(out) {
			t.Errorf("no line matching %s in:\n%s", want, out)
		}
	}
	// node1 and node2 are asked whether they answer, then node2 runs the
	// step; the client's check never reaches vagrant.
	if calls, err := os.ReadFile(filepath.Join(fake, "calls")); err != nil || string(calls) != "node1\nnode2\nnode2\n" {
		t.Errorf("vagrant ssh went to %q (%v), want node1, node2, node2", calls, err)
	}
}

// runScript runs bash with args in this folder against a lab of a prefix
// of its own, as root, with the built meshctl first on the PATH. It fails
// t if the lab is left behind; t's cleanup takes it down in any case.
func runScript(t *testing.T, args ...string) (string, error) {
	t.Helper()
	testutil.RequireRoot(t)
	prefix, root := randomPrefix(), t.TempDir()
	meshctl := filepath.Join(binDir, "meshctl")
	t.Cleanup(func() {
		// lab down is safe on a lab that is down: this one is for a
		// script that died before taking its own down.
		if out, err := exec.Command(meshctl, "--lab-prefix", prefix, "--lab-root", root, "lab", "down").CombinedOutput(); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"),
		"MESHD_LAB_PREFIX="+prefix, "MESHD_LAB_ROOT="+root, "TUT_CHECK_TIMEOUT=20")
	start := time.Now()
	err := cmd.Run()
	t.Logf("bash %s: %v in %v", args[0], err, time.Since(start).Round(time.Second))
	dir, derr := lab.Dir(root, prefix)
	if derr != nil {
		t.Fatal(derr)
	}
	if left, lerr := lab.Leftovers(prefix, dir); lerr != nil || len(left) > 0 {
		t.Errorf("the script's lab left behind %v (%v)", left, lerr)
	}
	return buf.String(), err
}

func randomPrefix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "-"
}

// tail is the last n lines of out.
func tail(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
