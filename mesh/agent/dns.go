package agent

import (
	"fmt"
	"net"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/records"
)

// attachDNS opens the task's resolver sockets inside its namespace and
// serves them; the task's rules (lb.TaskRules.DNS) make them answer on :53.
func (a *Agent) attachDNS(lt *localTask, st records.Objects) error {
	pc, ln, err := a.cfg.Listen(lt.sandbox)
	if err != nil {
		return err
	}
	lt.dnsPorts = lb.DNSPorts{UDP: uint16(pc.LocalAddr().(*net.UDPAddr).Port), TCP: uint16(ln.Addr().(*net.TCPAddr).Port)}
	res, err := a.dns.Attach(taskQuerier(lt, st), pc, ln)
	if err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("serve embedded dns: %w", err)
	}
	lt.dns = res
	return nil
}
