package ipam

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// state is the JSON shape of an Allocator:
//
//	{"Config": {"OverlayPool": "10.0.0.0/8", "OverlayPrefixLen": 24, "FirstVNI": 4097},
//	 "Networks": [{"ID": "…", "Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1", "VNI": 4097,
//	               "Last": "10.0.0.3", "Allocated": ["10.0.0.2", "10.0.0.3"]}]}
//
// Addresses are listed, not stored as bitmaps, so that the state file stays
// readable and small however large a subnet is.
type state struct {
	Config   Config         `json:"Config"`
	Networks []networkState `json:"Networks"`
}

type networkState struct {
	Network
	// Last is the cursor of serial allocation: the last address handed out
	// automatically. Zero means none yet.
	Last      netip.Addr   `json:"Last,omitzero"`
	Allocated []netip.Addr `json:"Allocated,omitempty"`
}

// MarshalJSON encodes the whole state: configuration, networks, cursors
// and allocated addresses, networks in ID order.
func (a Allocator) MarshalJSON() ([]byte, error) {
	s := state{Config: a.cfg, Networks: make([]networkState, 0, len(a.nets))}
	for _, id := range a.ids() {
		e := a.nets[id]
		s.Networks = append(s.Networks, networkState{
			Network:   e.net,
			Last:      e.pool.last,
			Allocated: e.pool.Allocated(),
		})
	}
	return json.Marshal(s)
}

// UnmarshalJSON decodes a state written by [Allocator.MarshalJSON]. It
// checks everything New and AddNetwork would (valid config and networks,
// no overlapping subnets, no VNI twice, allocated addresses inside their
// subnet and not reserved) and leaves a unchanged when it fails.
func (a *Allocator) UnmarshalJSON(data []byte) error {
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode ipam state: %w", err)
	}
	b, err := New(s.Config)
	if err != nil {
		return fmt.Errorf("decode ipam state: %w", err)
	}
	for _, ns := range s.Networks {
		if err := b.restore(ns); err != nil {
			return fmt.Errorf("decode ipam state: network %q: %w", ns.ID, err)
		}
	}
	*a = *b
	return nil
}

// restore adds a decoded network with its addresses.
func (a *Allocator) restore(ns networkState) error {
	n := ns.Network
	if len(n.Aux) == 0 {
		n.Aux = nil
	}
	if err := a.checkID(n.ID); err != nil {
		return err
	}
	if err := checkNetwork(n); err != nil {
		return err
	}
	if err := a.checkOverlap(n.Subnet, nil); err != nil {
		return err
	}
	if n.VNI == 0 || n.VNI > maxVNI {
		return fmt.Errorf("%w: VNI %d is outside 1..%d", ErrInvalid, n.VNI, maxVNI)
	}
	if other, ok := a.vniOwner(n.VNI); ok {
		return fmt.Errorf("%w: VNI %d is network %s's too", ErrInvalid, n.VNI, other)
	}
	if ns.Last.IsValid() && !n.Subnet.Contains(ns.Last) {
		return fmt.Errorf("%w: cursor %s is outside subnet %s", ErrInvalid, ns.Last, n.Subnet)
	}
	p := newPool(n)
	for _, ip := range ns.Allocated {
		if !ip.IsValid() {
			return fmt.Errorf("%w: empty allocated address", ErrInvalid)
		}
		if _, err := p.Allocate(ip); err != nil {
			return err
		}
	}
	p.last = ns.Last
	a.nets[n.ID] = &entry{net: n, pool: p}
	return nil
}
