package api

import "regexp"

// Limits on what a request may carry. Everything the managers accept is
// replicated through raft and published as gossip table entries, which
// carry at most 64 KiB encoded (gossip.MaxValueSize): these bounds keep
// the largest service record well inside, and a manager still measures
// each record before it accepts a write. Refusals are 400s that quote the
// offending input cut to [MaxQuoted] bytes.
const (
	// MaxNameLen bounds service, network and node names, as docker's.
	MaxNameLen = 63
	// MaxAliases bounds a service's aliases on one network; MaxAliasLen
	// bounds each, a DNS label's length.
	MaxAliases  = 32
	MaxAliasLen = 63
	// MaxNetworks bounds the networks a service attaches to (ingress,
	// which publishing adds, aside).
	MaxNetworks = 16
	// MaxPorts bounds a service's published ports.
	MaxPorts = 64
	// MaxArgs bounds a service's arguments (a host command and its
	// arguments), MaxArgsBytes their total length.
	MaxArgs      = 64
	MaxArgsBytes = 4 << 10
	// MaxImageLen bounds an image reference, as docker's.
	MaxImageLen = 255
	// MaxAuxAddresses bounds a network's --aux-address entries.
	MaxAuxAddresses = 32
	// MaxRefLen bounds a reference to an object (an ID, a name or an ID
	// prefix) and the short fields: addresses, prefixes, drivers,
	// versions.
	MaxRefLen = 64
	// MaxHostPortLen bounds a host:port (a DNS name and a port).
	MaxHostPortLen = 255 + 6
	// MaxTokenLen bounds a join token.
	MaxTokenLen = 256
	// MaxLabels bounds a node's labels, MaxLabelLen each key and value;
	// MaxConstraints bounds a service's constraints, each at most
	// MaxConstraintLen (a label's key and value and an operator).
	MaxLabels        = 64
	MaxLabelLen      = 128
	MaxConstraints   = 64
	MaxConstraintLen = 2*MaxLabelLen + 16
)

// sizeCheck is one field against its bound.
type sizeCheck struct {
	what  string // "service name"
	value string
	max   int
}

func checkLens(checks ...sizeCheck) error {
	for _, c := range checks {
		if len(c.value) > c.max {
			return Invalid("invalid %s %s: longer than %d bytes", c.what, Quote(c.value), c.max)
		}
	}
	return nil
}

func checkCount(what string, n, max int) error {
	if n > max {
		return Invalid("too many %s: %d, at most %d", what, n, max)
	}
	return nil
}

// CheckSizes refuses a service create whose fields are over the limits
// above; what the fields mean is the manager's to check.
func (r ServiceCreate) CheckSizes() error {
	if err := checkLens(sizeCheck{"service name", r.Name, MaxNameLen}, sizeCheck{"image", r.Image, MaxImageLen}); err != nil {
		return err
	}
	if err := checkCount("arguments", len(r.Args), MaxArgs); err != nil {
		return err
	}
	total := 0
	for _, a := range r.Args {
		total += len(a)
	}
	if total > MaxArgsBytes {
		return Invalid("arguments too long: %d bytes, at most %d", total, MaxArgsBytes)
	}
	if err := checkCount("networks", len(r.Networks), MaxNetworks); err != nil {
		return err
	}
	for _, a := range r.Networks {
		if err := checkLens(sizeCheck{"network", a.Target, MaxRefLen}); err != nil {
			return err
		}
		if err := checkCount("aliases on network "+Clip(a.Target), len(a.Aliases), MaxAliases); err != nil {
			return err
		}
		for _, al := range a.Aliases {
			if err := checkLens(sizeCheck{"alias", al, MaxAliasLen}); err != nil {
				return err
			}
		}
	}
	if err := checkLens(sizeCheck{"endpoint mode", r.EndpointMode, MaxRefLen}, sizeCheck{"mode", r.Mode, MaxRefLen}); err != nil {
		return err
	}
	if err := checkCount("constraints", len(r.Constraints), MaxConstraints); err != nil {
		return err
	}
	for _, c := range r.Constraints {
		if err := checkLens(sizeCheck{"constraint", c, MaxConstraintLen}); err != nil {
			return err
		}
	}
	if err := checkCount("published ports", len(r.Ports), MaxPorts); err != nil {
		return err
	}
	for _, p := range r.Ports {
		if err := checkLens(sizeCheck{"protocol", p.Protocol, MaxRefLen}, sizeCheck{"publish mode", p.PublishMode, MaxRefLen}); err != nil {
			return err
		}
	}
	return nil
}

// CheckSizes refuses a network create whose fields are over the limits.
func (r NetworkCreate) CheckSizes() error {
	err := checkLens(sizeCheck{"network name", r.Name, MaxNameLen}, sizeCheck{"driver", r.Driver, MaxRefLen},
		sizeCheck{"subnet", r.Subnet, MaxRefLen}, sizeCheck{"gateway", r.Gateway, MaxRefLen},
		sizeCheck{"ip range", r.IPRange, MaxRefLen})
	if err != nil {
		return err
	}
	if err := checkCount("aux addresses", len(r.AuxAddresses), MaxAuxAddresses); err != nil {
		return err
	}
	for k, v := range r.AuxAddresses {
		if err := checkLens(sizeCheck{"aux address name", k, MaxNameLen}, sizeCheck{"aux address", v, MaxRefLen}); err != nil {
			return err
		}
	}
	return nil
}

// CheckSizes refuses a join whose fields are over the limits: the node's
// record is replicated like any object.
func (r JoinRequest) CheckSizes() error {
	return checkLens(sizeCheck{"node ID", r.ID, MaxRefLen}, sizeCheck{"node name", r.Hostname, MaxNameLen},
		sizeCheck{"address", r.Addr, MaxRefLen}, sizeCheck{"address prefix", r.AddrPrefix, MaxRefLen},
		sizeCheck{"API address", r.APIAddr, MaxHostPortLen}, sizeCheck{"data plane", r.DataPlane, MaxRefLen},
		sizeCheck{"version", r.Version, MaxRefLen})
}

// CheckSizes refuses a swarm init whose fields are over the limits.
func (r SwarmInit) CheckSizes() error {
	return checkLens(sizeCheck{"advertise address", r.AdvertiseAddr, MaxHostPortLen})
}

// CheckSizes refuses a swarm join whose fields are over the limits. The
// token is never quoted back.
func (r SwarmJoin) CheckSizes() error {
	if len(r.Token) > MaxTokenLen {
		return Invalid("invalid token: longer than %d bytes", MaxTokenLen)
	}
	return checkLens(sizeCheck{"remote address", r.RemoteAddr, MaxHostPortLen},
		sizeCheck{"advertise address", r.AdvertiseAddr, MaxHostPortLen})
}

// CheckSizes refuses a node update whose labels are over the limits; the
// manager checks the node's labels after the update too.
func (u NodeUpdate) CheckSizes() error {
	err := checkLens(sizeCheck{"availability", u.Availability, MaxRefLen}, sizeCheck{"role", u.Role, MaxRefLen})
	if err != nil {
		return err
	}
	if err := checkCount("labels to add", len(u.LabelAdd), MaxLabels); err != nil {
		return err
	}
	if err := checkCount("labels to remove", len(u.LabelRm), MaxLabels); err != nil {
		return err
	}
	for k, v := range u.LabelAdd {
		if err := checkLens(sizeCheck{"label key", k, MaxLabelLen}, sizeCheck{"label value", v, MaxLabelLen}); err != nil {
			return err
		}
	}
	for _, k := range u.LabelRm {
		if err := checkLens(sizeCheck{"label key", k, MaxLabelLen}); err != nil {
			return err
		}
	}
	return nil
}

// validContainerName is Docker's rule for container names.
var validContainerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckContainerName refuses a container name Docker would, in its words.
func CheckContainerName(name string) error {
	if !validContainerName.MatchString(name) {
		return Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", Clip(name))
	}
	return nil
}

// CheckSizes refuses a run whose fields are over the limits; what they
// mean is for the node (or, on an overlay, the manager) to check.
func (r ContainerCreate) CheckSizes() error {
	err := checkLens(sizeCheck{"container name", r.Name, MaxNameLen}, sizeCheck{"image", r.Image, MaxImageLen},
		sizeCheck{"entrypoint", r.Entrypoint, MaxArgsBytes}, sizeCheck{"working directory", r.WorkingDir, MaxArgsBytes},
		sizeCheck{"hostname", r.Hostname, MaxNameLen})
	if err != nil {
		return err
	}
	if err := checkStrings("arguments", r.Cmd, MaxArgs, MaxArgsBytes); err != nil {
		return err
	}
	if err := CheckEnv(r.Env); err != nil {
		return err
	}
	if err := checkCount("networks", len(r.Networks), MaxNetworks); err != nil {
		return err
	}
	for _, a := range r.Networks {
		if err := a.checkSizes(); err != nil {
			return err
		}
	}
	if err := checkCount("published ports", len(r.Publish), MaxPorts); err != nil {
		return err
	}
	for _, p := range r.Publish {
		if err := checkLens(sizeCheck{"protocol", p.Proto, MaxRefLen}, sizeCheck{"host IP", p.HostIP, MaxRefLen}); err != nil {
			return err
		}
	}
	return nil
}

// CheckSizes refuses a network connect or disconnect over the limits.
func (r NetworkConnect) CheckSizes() error {
	if err := checkLens(sizeCheck{"container", r.Container, MaxRefLen}); err != nil {
		return err
	}
	return r.Attach.checkSizes()
}

func (a ContainerAttach) checkSizes() error {
	if err := checkLens(sizeCheck{"network", a.Network, MaxRefLen}, sizeCheck{"IP address", a.IP, MaxRefLen}); err != nil {
		return err
	}
	if l := a.Local; l != nil {
		if err := checkLens(sizeCheck{"container ID", l.ID, MaxRefLen}, sizeCheck{"container name", l.Name, MaxRefLen}); err != nil {
			return err
		}
	}
	if err := checkCount("aliases on network "+Clip(a.Network), len(a.Aliases), MaxAliases); err != nil {
		return err
	}
	for _, al := range a.Aliases {
		if err := checkLens(sizeCheck{"alias", al, MaxAliasLen}); err != nil {
			return err
		}
	}
	return nil
}

// checkStrings bounds a list's length and total size.
func checkStrings(what string, list []string, maxN, maxBytes int) error {
	if err := checkCount(what, len(list), maxN); err != nil {
		return err
	}
	total := 0
	for _, s := range list {
		total += len(s)
	}
	if total > maxBytes {
		return Invalid("%s too long: %d bytes, at most %d", what, total, maxBytes)
	}
	return nil
}
