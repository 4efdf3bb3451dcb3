package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Peer is an overlay_peer_table entry: an endpoint's address, its MAC
// and the VTEP (node underlay address) behind which it lives.
type Peer struct {
	IP   netip.Addr
	MAC  net.HardwareAddr
	VTEP netip.Addr
}

// peerWire is the JSON on the wire; its field names MUST NOT change.
type peerWire struct {
	IP   string `json:"IP"`
	MAC  string `json:"MAC"`
	VTEP string `json:"VTEP"`
}

func encodePeer(p Peer) ([]byte, error) {
	return json.Marshal(peerWire{IP: p.IP.String(), MAC: p.MAC.String(), VTEP: p.VTEP.String()})
}

func decodePeer(b []byte) (Peer, error) {
	var w peerWire
	if err := json.Unmarshal(b, &w); err != nil {
		return Peer{}, err
	}
	ip, err1 := netip.ParseAddr(w.IP)
	mac, err2 := net.ParseMAC(w.MAC)
	vtep, err3 := netip.ParseAddr(w.VTEP)
	if err1 != nil || err2 != nil || err3 != nil {
		return Peer{}, fmt.Errorf("peer %q %q %q: bad address", w.IP, w.MAC, w.VTEP)
	}
	return Peer{IP: ip, MAC: mac, VTEP: vtep}, nil
}

// SetPeer announces an endpoint of this node on a network, writing only
// when the table does not already say so (a write gossips).
func SetPeer(db DB, netID, key string, p Peer) error {
	b, err := encodePeer(p)
	if err != nil {
		return fmt.Errorf("encode peer %s: %w", p.IP, err)
	}
	if e, ok := db.Get(TableOverlayPeer, netID, key); ok && bytes.Equal(e.Value, b) {
		return nil
	}
	return db.Put(TableOverlayPeer, netID, key, b)
}

// DeletePeer withdraws an endpoint; absent is fine.
func DeletePeer(db DB, netID, key string) error {
	return db.Delete(TableOverlayPeer, netID, key)
}

// RemotePeers lists a network's endpoints owned by nodes other than self,
// sorted by IP. It returns the keys of entries that do not decode, so the
// caller can say so.
func RemotePeers(db DB, netID, self string) (peers []Peer, bad []string) {
	for _, e := range db.List(TableOverlayPeer, netID) {
		if e.Owner == self {
			continue
		}
		p, err := decodePeer(e.Value)
		if err != nil {
			bad = append(bad, e.Key)
			continue
		}
		peers = append(peers, p)
	}
	slices.SortFunc(peers, func(x, y Peer) int { return x.IP.Compare(y.IP) })
	return peers, bad
}
