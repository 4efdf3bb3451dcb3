package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Names and numbers every lab shares. The address plan is the tutorials'
// (Vagrant's private network): it MUST NOT change, or the tutorials' commands
// stop working verbatim on a lab.
const (
	// DefaultRoot holds one directory per lab: tmpfs on most machines, so a
	// reboot, which also drops every namespace, drops the state with it.
	DefaultRoot = "/run/meshd-lab"
	// MaxNodes keeps the node addresses (.10 … .59) clear of the client (.1)
	// and the lab small enough for one machine.
	MaxNodes = 50

	maxPrefix      = 8 // "<prefix>node50" must fit a link name (15 bytes): 8+6
	defaultName    = "default"
	underlaySuffix = "lab-underlay"
	clientName     = "client"
	nodeBase       = "node"
	bridgeName     = "br0"
	ifName         = "eth0" // the node's side of its veth, as on a Vagrant VM
	mtu            = 1500
	firstNodeHost  = 10 // node1 is 192.168.33.10, node2 .11, …
	clientHost     = 1  // the "workstation"

	stateFile   = "lab.json"
	logFile     = "meshd.log"
	socketFile  = "meshd.sock"
	netnsDir    = "/run/netns"     // iproute2's named namespaces, so "ip netns" sees ours
	meshdRunDir = "/var/run/meshd" // meshd's default run dir; ExecCmd mounts the node's there
	maxSunPath  = 107              // sockaddr_un.sun_path minus the NUL

	stopTimeout = 10 * time.Second // SIGTERM grace before SIGKILL, as docker stop
)

var (
	underlayNet = netip.MustParsePrefix("192.168.33.0/24")
	prefixRE    = regexp.MustCompile(`^[a-z0-9-]{0,8}$`)
)

// DaemonArgv returns the meshd command line of node i (1-based) in a lab:
// its name, address and run dir, then extra unchanged. No node is told to
// start or join a swarm: every meshd starts outside one, as on a machine
// just installed, and the swarm is formed through the API afterwards (see
// [FormSwarm]), or by hand. Restarted with the same argv, a daemon comes
// back into its swarm from its run dir. It is pure: the same inputs give
// the same argv.
func DaemonArgv(meshd string, i int, runDir string, extra []string) []string {
	argv := []string{meshd,
		"--node-name", nodeName(i),
		"--advertise-addr", nodeAddr(i).String(),
		"--run-dir", runDir,
	}
	return append(argv, extra...)
}

func nodeName(i int) string { return nodeBase + strconv.Itoa(i) }

// nodeAddr is 192.168.33.(9+i).
func nodeAddr(i int) netip.Addr {
	a := underlayNet.Addr().As4()
	a[3] = byte(firstNodeHost - 1 + i)
	return netip.AddrFrom4(a)
}

func clientAddr() netip.Addr {
	a := underlayNet.Addr().As4()
	a[3] = clientHost
	return netip.AddrFrom4(a)
}

// nodeIndex returns i for "node<i>" within 1..n, or 0.
func nodeIndex(name string, n int) int {
	if len(name) <= len(nodeBase) || name[:len(nodeBase)] != nodeBase || name[len(nodeBase)] == '0' {
		return 0
	}
	i, err := strconv.Atoi(name[len(nodeBase):])
	if err != nil || i < 1 || i > n {
		return 0
	}
	return i
}

// validPrefix accepts "" (the default lab) and up to 8 of [a-z0-9-].
// "default" is refused because its directory would be the default lab's.
func validPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("lab: prefix %q: want at most %d of [a-z0-9-]", p, maxPrefix)
	}
	if p == defaultName {
		return fmt.Errorf("lab: prefix %q is reserved for the default lab", p)
	}
	return nil
}

// labDir returns <root>/<prefix or "default">, root defaulting to
// [DefaultRoot]. An existing root is resolved through symlinks, because mount
// points in /proc/self/mountinfo are.
func labDir(root, prefix string) (string, error) {
	if err := validPrefix(prefix); err != nil {
		return "", err
	}
	if root == "" {
		root = DefaultRoot
	}
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("lab: root %q is not absolute", root)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	name := prefix
	if name == "" {
		name = defaultName
	}
	return filepath.Join(filepath.Clean(root), name), nil
}

// netnsNames is every namespace name of a lab: node1…nodeN, client, underlay.
func netnsNames(prefix string, n int) []string {
	names := make([]string, 0, n+2)
	for i := 1; i <= n; i++ {
		names = append(names, prefix+nodeName(i))
	}
	return append(names, prefix+clientName, prefix+underlaySuffix)
}

// labNetnsRE matches the namespace names of the lab with this prefix and no
// other lab's: the whole name is anchored.
func labNetnsRE(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) +
		`(` + nodeBase + `[1-9][0-9]*|` + clientName + `|` + underlaySuffix + `)$`)
}

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// Dir returns where the lab with this prefix keeps its state under root
// (root "" is [DefaultRoot]).
func Dir(root, prefix string) (string, error) { return labDir(root, prefix) }
