package agent

import (
	"fmt"
	"net"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/records"
)

// embeddedDNS is the address every task's resolv.conf names.
const embeddedDNS = "127.0.0.11"

// attachDNS opens the task's resolver sockets inside its namespace and
// serves them; the task's rules (lb.TaskRules.DNS) make them answer on :53.
func (a *Agent) attachDNS(lt *localTask, st records.Objects) error {
	pc, ln, err := a.cfg.Listen(lt.sandbox)
	if err != nil {
		return err
	}
	lt.dnsPorts = lb.DNSPorts{UDP: uint16(pc.LocalAddr().(*net.UDPAddr).Port), TCP: uint16(ln.Addr().(*net.TCPAddr).Port)}
	res, err := a.dns.Attach(querier(lt.spec, st), pc, ln)
	if err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("serve embedded dns: %w", err)
	}
	lt.dns = res
	return nil
}

// listenInSandbox opens a UDP and a TCP socket on 127.0.0.11 with free
// ports inside the namespace at path: sockets keep the namespace they
// were made in.
func listenInSandbox(path string) (net.PacketConn, net.Listener, error) {
	var pc net.PacketConn
	var ln net.Listener
	err := nsfile.Do(path, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", embeddedDNS+":0"); err != nil {
			return fmt.Errorf("listen udp %s: %w", embeddedDNS, err)
		}
		if ln, err = net.Listen("tcp", embeddedDNS+":0"); err != nil {
			pc.Close()
			return fmt.Errorf("listen tcp %s: %w", embeddedDNS, err)
		}
		return nil
	})
	return pc, ln, err
}
