package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/nsfile"
)

// embeddedDNS is the address every task's resolv.conf names.
const embeddedDNS = "127.0.0.11"

// Chains of the embedded DNS in a task's namespace, as Docker's
// DOCKER_OUTPUT and DOCKER_POSTROUTING.
const (
	dnsOutputChain      = "MESH-DNS-OUTPUT"
	dnsPostroutingChain = "MESH-DNS-POSTROUTING"
)

// renderDNSRules is the nat table that makes the resolver's sockets (on
// random ports of 127.0.0.11) answer on 127.0.0.11:53: DNAT of queries,
// SNAT of answers back to port 53.
func renderDNSRules(udpPort, tcpPort int) []byte {
	var b strings.Builder
	b.WriteString("*nat\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", dnsOutputChain, dnsPostroutingChain)
	fmt.Fprintf(&b, "-A OUTPUT -d %s/32 -j %s\n", embeddedDNS, dnsOutputChain)
	fmt.Fprintf(&b, "-A POSTROUTING -d %s/32 -j %s\n", embeddedDNS, dnsPostroutingChain)
	for _, r := range []struct {
		proto string
		port  int
	}{{"udp", udpPort}, {"tcp", tcpPort}} {
		fmt.Fprintf(&b, "-A %s -d %s/32 -p %s -m %s --dport 53 -j DNAT --to-destination %s:%d\n",
			dnsOutputChain, embeddedDNS, r.proto, r.proto, embeddedDNS, r.port)
		fmt.Fprintf(&b, "-A %s -s %s/32 -p %s -m %s --sport %d -j SNAT --to-source :53\n",
			dnsPostroutingChain, embeddedDNS, r.proto, r.proto, r.port)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// attachDNS opens the task's resolver sockets inside its namespace, makes
// them answer on :53, and serves them.
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
	rules := renderDNSRules(pc.LocalAddr().(*net.UDPAddr).Port, ln.Addr().(*net.TCPAddr).Port)
	if err := (lb.IPTables{NetNS: lt.sandbox}).Apply(context.Background(), rules); err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("embedded dns rules: %w", err)
	}
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
