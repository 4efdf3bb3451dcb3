package manager

import (
	"fmt"

	"github.com/meshd/meshd/mesh/api"
)

// checkPorts validates published ports and fills defaults: protocol tcp,
// mode ingress, target = published when only one is given.
func checkPorts(ports []api.PortConfig, endpointMode string) ([]api.PortConfig, error) {
	out := make([]api.PortConfig, 0, len(ports))
	seen := map[string]bool{}
	for _, p := range ports {
		if p.Protocol == "" {
			p.Protocol = api.ProtoTCP
		}
		if p.PublishMode == "" {
			p.PublishMode = api.PublishIngress
		}
		if p.TargetPort == 0 {
			return nil, api.Invalid("invalid port %d: the target port must be 1-65535", p.TargetPort)
		}
		if p.PublishedPort == 0 {
			return nil, api.Invalid("invalid published port for target %d: must be 1-65535", p.TargetPort)
		}
		if p.Protocol != api.ProtoTCP && p.Protocol != api.ProtoUDP {
			return nil, api.Invalid("invalid protocol %q: want tcp or udp", p.Protocol)
		}
		if p.PublishMode != api.PublishIngress && p.PublishMode != api.PublishHost {
			return nil, api.Invalid("invalid publish mode %q: want ingress or host", p.PublishMode)
		}
		if p.PublishMode == api.PublishIngress && endpointMode == api.EndpointModeDNSRR {
			return nil, api.Invalid("port %d published in ingress mode cannot be used with endpoint mode dnsrr", p.PublishedPort)
		}
		key := portKey(p)
		if seen[key] {
			return nil, api.Invalid("port %s given twice", key)
		}
		seen[key] = true
		out = append(out, p)
	}
	return out, nil
}

func portKey(p api.PortConfig) string { return fmt.Sprintf("%d/%s", p.PublishedPort, p.Protocol) }

// portTaken says which service already publishes p, if any.
func portTaken(s *State, p api.PortConfig, except string) (string, bool) {
	for _, svc := range s.Services {
		if svc.ID == except {
			continue
		}
		for _, q := range svc.Endpoint.Ports {
			if portKey(q) == portKey(p) {
				return svc.Name, true
			}
		}
	}
	return "", false
}

// publishesIngress says whether a service uses the routing mesh.
func publishesIngress(svc api.Service) bool {
	for _, p := range svc.Endpoint.Ports {
		if p.PublishMode == api.PublishIngress {
			return true
		}
	}
	return false
}
