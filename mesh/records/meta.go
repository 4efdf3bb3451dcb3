package records

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// NodeMeta is what a node says of itself in memberlist's node metadata
// (at most 512 bytes, so the JSON keys are one letter).
type NodeMeta struct {
	Name      string
	Role      string
	Addr      netip.Addr   // advertise address
	Prefix    netip.Prefix // the advertise address with its interface prefix
	DataPlane string
	Version   string
	// DataPathPort is the node's VXLAN port (meshd --data-path-port); 0
	// from a node that does not say.
	DataPathPort int
}

// metaWire is the JSON on the wire; its field names MUST NOT change.
type metaWire struct {
	Name      string `json:"n"`
	Role      string `json:"r"`
	Addr      string `json:"a"`
	DataPlane string `json:"d"`
	Version   string `json:"v"`
	Prefix    string `json:"p,omitempty"`
	DataPath  int    `json:"dp,omitempty"`
}

// EncodeMeta returns the metadata bytes a node gossips.
func EncodeMeta(m NodeMeta) ([]byte, error) {
	w := metaWire{Name: m.Name, Role: m.Role, Addr: m.Addr.String(), DataPlane: m.DataPlane, Version: m.Version,
		DataPath: m.DataPathPort}
	if m.Prefix.IsValid() {
		w.Prefix = m.Prefix.String()
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode node meta: %w", err)
	}
	return b, nil
}

// DecodeMeta reads a member's metadata; ok is false for anything that is
// not a meshd node's.
func DecodeMeta(b []byte) (m NodeMeta, ok bool) {
	var w metaWire
	if err := json.Unmarshal(b, &w); err != nil || w.Name == "" || w.DataPath < 0 || w.DataPath > 65535 {
		return m, false
	}
	addr, err := netip.ParseAddr(w.Addr)
	if err != nil {
		return m, false
	}
	m = NodeMeta{Name: w.Name, Role: w.Role, Addr: addr, DataPlane: w.DataPlane, Version: w.Version, DataPathPort: w.DataPath}
	if w.Prefix != "" {
		if m.Prefix, err = netip.ParsePrefix(w.Prefix); err != nil {
			return m, false
		}
	}
	return m, true
}
