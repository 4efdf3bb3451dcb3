package agent

import (
	"net/netip"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// hostsAddrs are the addresses a task's /etc/hosts names it by: one per
// overlay network, in attach order, as Docker appends a line each time a
// container joins a network. Docker leaves out the ingress network (and
// docker_gwbridge, our gateway, which is not in t.Networks): the routing
// mesh reaches the task there, nothing should name it by that address.
func hostsAddrs(t api.Task, st records.Objects) []netip.Addr {
	var out []netip.Addr
	for _, tn := range t.Networks {
		if a := api.AddrOf(tn.Addr); a.IsValid() && !st.Networks[tn.NetworkID].Ingress {
			out = append(out, a)
		}
	}
	return out
}

// writeEtcFiles writes a task's resolv.conf, hosts and hostname into dir
// before the task starts: its init binds them over the host's /etc files.
func writeEtcFiles(dir string, t api.Task, st records.Objects) (task.EtcFiles, error) {
	return task.WriteEtcFiles(dir, t.Hostname(), hostsAddrs(t, st))
}
