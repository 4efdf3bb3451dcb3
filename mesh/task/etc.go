package task

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// ResolvConf is every task's and container's /etc/resolv.conf: the
// embedded DNS.
const ResolvConf = "nameserver 127.0.0.11\noptions ndots:0\n"

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

// RenderHosts is a task's /etc/hosts as Docker writes a container's: the
// header, then one "address<TAB>hostname" line per address in addrs.
func RenderHosts(hostname string, addrs []netip.Addr) []byte {
	var b bytes.Buffer
	for _, h := range hostsHeader {
		fmt.Fprintf(&b, "%s\t%s\n", h.addr, h.names)
	}
	for _, a := range addrs {
		fmt.Fprintf(&b, "%s\t%s\n", a, hostname)
	}
	return b.Bytes()
}

// EtcFiles are the files written in a task's dir that its init binds
// over the host's /etc/<name>.
type EtcFiles struct{ ResolvConf, Hosts, Hostname string }

// WriteEtcFiles writes a task's resolv.conf, hosts (naming it by addrs)
// and hostname into dir before the task starts.
func WriteEtcFiles(dir, hostname string, addrs []netip.Addr) (EtcFiles, error) {
	f := EtcFiles{ResolvConf: filepath.Join(dir, "resolv.conf"), Hosts: filepath.Join(dir, "hosts"), Hostname: filepath.Join(dir, "hostname")}
	for path, data := range map[string][]byte{
		f.ResolvConf: []byte(ResolvConf),
		f.Hosts:      RenderHosts(hostname, addrs),
		f.Hostname:   []byte(hostname + "\n"),
	} {
		if err := writeEtcFile(path, data); err != nil {
			return EtcFiles{}, err
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
