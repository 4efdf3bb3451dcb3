package agent

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// resolvConf is every task's /etc/resolv.conf: the embedded DNS.
const resolvConf = "nameserver 127.0.0.11\noptions ndots:0\n"

// hostsHeader opens every task's /etc/hosts: the lines Docker writes first
// in a container's (libnetwork's etchosts defaults), in its order, so that
// a task reads the file a container would.
var hostsHeader = []struct{ addr, names string }{
	{"127.0.0.1", "localhost"},
	{"::1", "localhost ip6-localhost ip6-loopback"},
	{"fe00::0", "ip6-localnet"},
	{"ff00::0", "ip6-mcastprefix"},
	{"ff02::1", "ip6-allnodes"},
	{"ff02::2", "ip6-allrouters"},
}

// renderHosts is a task's /etc/hosts as Docker writes a container's: the
// header, then one "address<TAB>hostname" line per address in addrs.
func renderHosts(hostname string, addrs []netip.Addr) []byte {
	var b bytes.Buffer
	for _, h := range hostsHeader {
		fmt.Fprintf(&b, "%s\t%s\n", h.addr, h.names)
	}
	for _, a := range addrs {
		fmt.Fprintf(&b, "%s\t%s\n", a, hostname)
	}
	return b.Bytes()
}

// etcFiles are the files the agent writes in a task's dir, which the
// task's init binds over the host's /etc/<name>.
type etcFiles struct{ resolvConf, hosts, hostname string }

// hostsAddrs are the addresses a task's /etc/hosts names it by: one per
// overlay network, in attach order, as Docker appends a line each time a
// container joins a network. Docker leaves out the ingress network (and
// docker_gwbridge, our gateway, which is not in t.Networks): the routing
// mesh reaches the task there, nothing should name it by that address.
func hostsAddrs(t api.Task, st records.Objects) []netip.Addr {
	var out []netip.Addr
	for _, tn := range t.Networks {
		if a := addrOf(tn.Addr); a.IsValid() && !st.Networks[tn.NetworkID].Ingress {
			out = append(out, a)
		}
	}
	return out
}

// writeEtcFiles writes a task's resolv.conf, hosts and hostname into dir
// before the task starts: its init binds them over the host's /etc files.
func writeEtcFiles(dir string, t api.Task, st records.Objects) (etcFiles, error) {
	f := etcFiles{resolvConf: filepath.Join(dir, "resolv.conf"), hosts: filepath.Join(dir, "hosts"), hostname: filepath.Join(dir, "hostname")}
	for path, data := range map[string][]byte{
		f.resolvConf: []byte(resolvConf),
		f.hosts:      renderHosts(t.Hostname(), hostsAddrs(t, st)),
		f.hostname:   []byte(t.Hostname() + "\n"),
	} {
		if err := writeEtcFile(path, data); err != nil {
			return etcFiles{}, err
		}
	}
	return f, nil
}

// writeEtcFile writes data to path with mode 0644 whatever the umask: a
// task's processes that drop root must still read their /etc files.
func writeEtcFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}
