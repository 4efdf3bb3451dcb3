package manager

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// The manager's network objects. Allocation (subnet, gateway, VNI) is done
// here, under the state lock, and persisted with the network.

// addIngress creates the ingress network when a cluster starts.
func addIngress(s *State, now time.Time) error {
	id := api.NewID()
	n, err := s.IPAM.AddIngress(id)
	if err != nil {
		return err
	}
	s.Networks[id] = networkObject(id, api.IngressName, n, now, api.NetworkCreate{})
	ingress := s.Networks[id]
	ingress.Ingress = true
	s.Networks[id] = ingress
	return nil
}

func networkObject(id, name string, n ipam.Network, now time.Time, req api.NetworkCreate) api.Network {
	out := api.Network{ID: id, Name: name, Driver: api.DriverOverlay, Scope: api.ScopeSwarm,
		Subnet: n.Subnet.String(), Gateway: n.Gateway.String(), VNI: n.VNI,
		Internal: req.Internal, Attachable: req.Attachable, CreatedAt: now}
	if n.IPRange.IsValid() {
		out.IPRange = n.IPRange.String()
	}
	if len(n.Aux) > 0 {
		out.AuxAddresses = map[string]string{}
		for k, v := range n.Aux {
			out.AuxAddresses[k] = v.String()
		}
	}
	return out
}

// createNetwork checks and allocates a new overlay network.
func (m *Manager) CreateNetwork(_ context.Context, req api.NetworkCreate) (api.Network, error) {
	if err := req.CheckSizes(); err != nil {
		return api.Network{}, err
	}
	if err := checkName("network", req.Name); err != nil {
		return api.Network{}, err
	}
	if req.Driver == "" {
		req.Driver = api.DriverOverlay
	}
	if req.Driver != api.DriverOverlay {
		return api.Network{}, api.Invalid("unsupported driver %s: meshd builds overlay networks only", api.Quote(req.Driver))
	}
	id := api.NewID()
	var created api.Network
	err := m.update(func(s *State) error {
		for _, n := range s.Networks {
			if n.Name == req.Name {
				return api.Conflict("network with name %s already exists", req.Name)
			}
		}
		n, err := s.IPAM.AddNetwork(id, ipam.Request{Subnet: req.Subnet, Gateway: req.Gateway,
			IPRange: req.IPRange, AuxAddresses: req.AuxAddresses}, hostPrefixes(s))
		if err != nil {
			return api.Invalid("network %s: %v", req.Name, err)
		}
		created = networkObject(id, req.Name, n, time.Now().UTC(), req)
		s.Networks[id] = created
		return records.CheckSize("network", req.Name, created)
	})
	return created, err
}

// hostPrefixes are the nodes' own underlay prefixes: an overlay subnet
// must not shadow them.
func hostPrefixes(s *State) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range s.Nodes {
		if p, err := netip.ParsePrefix(n.AddrPrefix); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(n.Addr); err == nil {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	return out
}

// removeNetwork deletes a network no service uses.
func (m *Manager) RemoveNetwork(_ context.Context, ref string) error {
	return m.update(func(s *State) error {
		id, err := s.NetworkID(ref)
		if err != nil {
			return err
		}
		n := s.Networks[id]
		if n.Ingress {
			return api.Conflict("network %s is the ingress network of the routing mesh and cannot be removed", n.Name)
		}
		var users []string
		for _, svc := range s.Services {
			for _, a := range svc.Networks {
				if a.Target == id {
					users = append(users, svc.Name)
				}
			}
		}
		if len(users) > 0 {
			slices.Sort(users)
			return api.Conflict("network %s is in use by service %s", n.Name, strings.Join(users, ", "))
		}
		if users := containerUsers(s, id); len(users) > 0 {
			return containerNetworkInUse(n, users)
		}
		if err := s.IPAM.RemoveNetwork(id); err != nil {
			return err
		}
		delete(s.Networks, id)
		return nil
	})
}
