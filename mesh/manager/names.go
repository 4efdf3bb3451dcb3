package manager

import (
	"net/netip"
	"regexp"
	"slices"

	"github.com/meshd/meshd/mesh/api"
)

// objectName is docker's rule for network and service names.
var objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

func checkName(kind, name string) error {
	if !objectName.MatchString(name) {
		return api.Invalid("invalid %s name %s: want letters, digits, '_', '.', '-', starting with a letter or digit, at most 63", kind, api.Quote(name))
	}
	return nil
}

// checkAliases holds a network attachment's aliases to the rule of names:
// the embedded DNS answers them as it answers service names.
func checkAliases(aliases []string) error {
	if len(aliases) > api.MaxAliases {
		return api.Invalid("too many aliases: %d, at most %d", len(aliases), api.MaxAliases)
	}
	for _, a := range aliases {
		if !objectName.MatchString(a) {
			return api.Invalid("invalid alias %s: want letters, digits, '_', '.', '-', starting with a letter or digit, at most 63", api.Quote(a))
		}
	}
	return nil
}

// sortedKeys returns a set's keys in order, for stable allocation.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// allocate takes the next free address of a network and returns it as a
// CIDR with the network's prefix length ("10.0.0.3/24"), as objects keep it.
func allocate(s *State, netID string) (string, error) {
	ip, err := s.IPAM.Allocate(netID, netip.Addr{})
	if err != nil {
		return "", err
	}
	bits := netip.MustParsePrefix(s.Networks[netID].Subnet).Bits()
	return netip.PrefixFrom(ip, bits).String(), nil
}

// release gives back an address kept as a CIDR; a malformed one (never
// written by allocate) is ignored.
func release(s *State, netID, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil
	}
	return s.IPAM.Release(netID, p.Addr())
}
