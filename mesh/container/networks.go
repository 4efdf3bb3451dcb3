package container

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/overlay"
)

// DefaultBridgeDevice is the default bridge network's Linux bridge, as
// Docker's docker0.
const DefaultBridgeDevice = "mesh0"

// bridgeMTU is every bridge's: containers' traffic leaves by the host's
// uplink, not through VXLAN.
const bridgeMTU = 1500

// validName is Docker's rule for network names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// maxNameLen bounds a network's or a container's name.
const maxNameLen = 64

// reserved are the names no local network may take: Docker's predefined
// networks and the swarm's.
var reserved = []string{api.DefaultBridge, api.HostNetworkName, api.NoneNetworkName, api.IngressName, "mesh_gwbridge", "docker_gwbridge"}

// loadNetwork makes n's pool and bridge from its record.
func (e *Engine) loadNetwork(n *network) error {
	pool, err := ipam.NewNetworkPool(n.IPAM)
	if err != nil {
		return err
	}
	br, err := overlay.NewGatewayBridge(overlay.GatewayBridgeConfig{Name: n.Bridge, Subnet: n.IPAM.Subnet,
		Gateway: n.IPAM.Gateway, MTU: bridgeMTU, Kernel: e.cfg.Kernel, Logger: e.log.With("network", n.Name)})
	if err != nil {
		return err
	}
	e.pools[n.ID], e.bridges[n.ID] = pool, br
	return nil
}

// ensureDefaultLocked creates the default bridge network once.
func (e *Engine) ensureDefaultLocked() error {
	for _, n := range e.st.Networks {
		if n.Default {
			return nil
		}
	}
	_, err := e.createNetworkLocked(api.NetworkCreate{Name: api.DefaultBridge}, true)
	return err
}

// CreateNetwork makes a local bridge network: a Linux bridge br-<id12>
// holding the gateway, masquerading its egress unless internal, isolated
// from the other bridge networks.
func (e *Engine) CreateNetwork(req api.NetworkCreate) (api.NetworkResource, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.createNetworkLocked(req, false)
	if err != nil {
		return api.NetworkResource{}, err
	}
	if e.ctx != nil {
		e.syncRulesLocked(e.ctx)
	}
	return e.resourceLocked(n, false), nil
}

func (e *Engine) createNetworkLocked(req api.NetworkCreate, isDefault bool) (*network, error) {
	switch {
	case len(req.Name) > maxNameLen || !validName.MatchString(req.Name):
		return nil, api.Invalid("invalid network name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most %d characters", api.Quote(req.Name), maxNameLen)
	case !isDefault && slices.Contains(reserved, req.Name):
		return nil, api.Invalid("%s is a pre-defined network and cannot be created", req.Name)
	case req.Attachable:
		return nil, api.Invalid("--attachable is for overlay networks: a bridge network is this node's alone")
	}
	if e.byName(req.Name) != nil {
		return nil, api.Conflict("network with name %s already exists", req.Name)
	}
	id := newID()
	dev := "br-" + id[:12]
	if isDefault {
		dev = DefaultBridgeDevice
	}
	taken := e.cfg.Taken()
	for _, n := range e.st.Networks {
		taken = append(taken, n.IPAM.Subnet)
	}
	alloc, err := ipam.LocalNetwork(ipam.Request{Subnet: req.Subnet, Gateway: req.Gateway, IPRange: req.IPRange, AuxAddresses: req.AuxAddresses},
		func() (netip.Prefix, error) { return ipam.BridgeNetworkPool(taken) })
	if err != nil {
		if errors.Is(err, ipam.ErrInvalid) {
			return nil, api.Invalid("%v", err)
		}
		return nil, api.Conflict("%v", err)
	}
	for _, n := range e.st.Networks {
		if n.IPAM.Subnet.Overlaps(alloc.Subnet) {
			return nil, api.Conflict("Pool overlaps with other one on this address space: %s is %s's", alloc.Subnet, n.Name)
		}
	}
	n := &network{ID: id, Name: req.Name, Bridge: dev, IPAM: alloc, Internal: req.Internal, Default: isDefault, Created: e.cfg.Now().UTC()}
	if err := e.loadNetwork(n); err != nil {
		return nil, api.Invalid("%v", err)
	}
	if err := e.bridges[n.ID].Ensure(); err != nil {
		delete(e.pools, n.ID)
		delete(e.bridges, n.ID)
		_ = e.cfg.Kernel.RemoveLink("", dev)
		return nil, fmt.Errorf("create network %s: %w", n.Name, err)
	}
	e.st.Networks = append(e.st.Networks, n)
	if err := e.saveLocked(); err != nil {
		return nil, err
	}
	e.log.Info("bridge network created", "network", n.Name, "bridge", dev, "subnet", alloc.Subnet)
	return n, nil
}

// RemoveNetwork removes a local network that no container uses. It
// returns false when ref names none of them (the swarm's may).
func (e *Engine) RemoveNetwork(ref string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.resolveNetworkLocked(ref)
	if n == nil {
		return false, nil
	}
	if n.Default {
		return true, api.Errorf(403, "bridge is a pre-defined network and cannot be removed")
	}
	for _, c := range e.st.Containers {
		for _, tn := range c.Task.Networks {
			if tn.NetworkID == n.ID {
				return true, api.Errorf(403, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
			}
		}
	}
	if e.linkedOnLocked(n.ID) {
		return true, api.Errorf(403, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
	}
	if err := e.cfg.Kernel.RemoveLink("", n.Bridge); err != nil {
		return true, fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	e.st.Networks = slices.DeleteFunc(e.st.Networks, func(o *network) bool { return o == n })
	delete(e.pools, n.ID)
	delete(e.bridges, n.ID)
	if e.ctx != nil {
		e.syncRulesLocked(e.ctx)
	}
	e.log.Info("bridge network removed", "network", n.Name, "bridge", n.Bridge)
	return true, e.saveLocked()
}

// Subnets are the local networks' subnets, built or not yet.
func (e *Engine) Subnets() []netip.Prefix {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]netip.Prefix, 0, len(e.st.Networks))
	for _, n := range e.st.Networks {
		out = append(out, n.IPAM.Subnet)
	}
	return out
}

func (e *Engine) byName(name string) *network {
	for _, n := range e.st.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// resolveNetworkLocked finds a local network by name, full ID or unique
// ID prefix; nil when none.
func (e *Engine) resolveNetworkLocked(ref string) *network {
	if ref == "" {
		return nil
	}
	if n := e.byName(ref); n != nil {
		return n
	}
	var found *network
	for _, n := range e.st.Networks {
		if n.ID == ref {
			return n
		}
		if len(ref) < len(n.ID) && n.ID[:len(ref)] == ref {
			if found != nil {
				return nil
			}
			found = n
		}
	}
	return found
}

// Networks are the local networks as network ls and inspect show them;
// with detail, each with its containers' endpoints.
func (e *Engine) Networks(detail bool) []api.NetworkResource {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]api.NetworkResource, 0, len(e.st.Networks))
	for _, n := range e.st.Networks {
		out = append(out, e.resourceLocked(n, detail))
	}
	return out
}

// Optional Docker options of a bridge network, as docker network inspect
// shows them.
const (
	optionBridgeName = "com.docker.network.bridge.name"
	optionMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
	optionDefault    = "com.docker.network.bridge.default_bridge"
)

func (e *Engine) resourceLocked(n *network, detail bool) api.NetworkResource {
	cfg := api.IPAMConfig{Subnet: n.IPAM.Subnet.String(), Gateway: n.IPAM.Gateway.String()}
	if n.IPAM.IPRange.IsValid() {
		cfg.IPRange = n.IPAM.IPRange.String()
	}
	if len(n.IPAM.Aux) > 0 {
		cfg.AuxAddress = map[string]string{}
		for k, v := range n.IPAM.Aux {
			cfg.AuxAddress[k] = v.String()
		}
	}
	r := api.NetworkResource{Name: n.Name, ID: n.ID, Created: n.Created, Scope: api.ScopeLocal, Driver: api.DriverBridge,
		IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{cfg}}, Internal: n.Internal,
		Containers: map[string]api.EndpointResource{},
		Options:    map[string]string{optionBridgeName: n.Bridge, optionMasquerade: fmt.Sprint(!n.Internal)},
		Labels:     map[string]string{}}
	if n.Default {
		r.Options[optionDefault] = "true"
	}
	if !detail {
		return r
	}
	for _, c := range e.st.Containers {
		if e.boxes[c.Task.ID] == nil {
			continue // Docker lists the running ones
		}
		for _, tn := range c.Task.Networks {
			if tn.NetworkID != n.ID {
				continue
			}
			cid := c.Task.ContainerID()
			r.Containers[cid] = api.EndpointResource{Name: c.Task.Name(), EndpointID: api.EndpointID(n.ID, cid),
				MacAddress: tn.MAC, IPv4Address: tn.Addr}
		}
	}
	// Swarm tasks connected to the network (network connect).
	for _, byNet := range e.links {
		if l := byNet[n.ID]; l != nil {
			r.Containers[l.ContainerID] = api.EndpointResource{Name: l.Name, EndpointID: api.EndpointID(n.ID, l.ContainerID),
				MacAddress: l.net.MAC, IPv4Address: l.net.Addr}
		}
	}
	return r
}
