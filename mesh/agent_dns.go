package mesh

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
)

// embeddedDNS is the address every task's resolv.conf names.
const embeddedDNS = "127.0.0.11"

// attachDNS opens the task's resolver sockets inside its namespace and
// serves them; the task's rules (lb.TaskRules.DNS) make them answer on :53.
func (a *agent) attachDNS(lt *localTask, st State) error {
	var pc net.PacketConn
	var ln net.Listener
	err := nsfile.Do(lt.sandbox, func() error {
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
	if err != nil {
		return err
	}
	lt.dnsPorts = lb.DNSPorts{UDP: uint16(pc.LocalAddr().(*net.UDPAddr).Port), TCP: uint16(ln.Addr().(*net.TCPAddr).Port)}
	res, err := a.dns.Attach(querier(lt.spec, st), pc, ln)
	if err != nil {
		return fmt.Errorf("serve embedded dns: %w", err)
	}
	lt.dns = res
	return nil
}

// querier lists the networks whose names a task sees, in attach order;
// the ingress network has no names.
func querier(t api.Task, st State) dns.Querier {
	var q dns.Querier
	for _, tn := range t.Networks {
		if n, ok := st.Networks[tn.NetworkID]; ok && n.Ingress {
			continue
		}
		q.Networks = append(q.Networks, tn.NetworkID)
	}
	return q
}

// dnsTable builds the records from endpoint_table, every network.
func (a *agent) dnsTable(st State) *dns.Table {
	var eps []dns.Endpoint
	for _, e := range a.d.db.List(tableEndpoints, "*") {
		var r endpointRecord
		if json.Unmarshal(e.Value, &r) != nil || r.Draining {
			continue
		}
		n := st.Networks[e.Scope]
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			continue
		}
		vip, _ := netip.ParseAddr(r.VIP)
		eps = append(eps, dns.Endpoint{NetworkID: e.Scope, Network: n.Name, Ingress: n.Ingress,
			Service: r.Service, TaskName: r.Name, IP: ip, VIP: vip, Aliases: r.Aliases})
	}
	return dns.NewTable(eps)
}
