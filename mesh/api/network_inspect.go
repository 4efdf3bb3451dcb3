package api

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// The node-local networks network ls shows beside the swarm's and the
// gateway bridge, as Docker shows host and none.
const (
	HostNetworkName = "host"
	NoneNetworkName = "none"

	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
	ScopeLocal   = "local"

	// OptionVXLANIDs is the overlay option holding the VNI, as Docker
	// names it.
	OptionVXLANIDs = "com.docker.network.driver.overlay.vxlanid_list"

	// The sandboxes' endpoint keys and names in Containers, as Docker's.
	IngressSandboxKey  = "ingress-sbox"
	IngressEndpoint    = "ingress-endpoint"
	GatewayIngressName = "gateway_ingress-sbox"
)

// NetworkResource is a network as docker network inspect and ls show it
// (Docker's types.NetworkResource), seen from the node that answers:
// Containers are the endpoints on that node.
type NetworkResource struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       IPAM                        `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigFrom ConfigReference             `json:"ConfigFrom"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]EndpointResource `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
	Peers      []PeerInfo                  `json:"Peers,omitempty"`
}

// Id is ID under Docker's JSON name, so that a template written for
// docker network inspect ({{.Id}}) works as well as {{.ID}}.
func (n NetworkResource) Id() string { return n.ID } //nolint:revive // Docker's name

// VNI is the overlay's VXLAN ID as its option says it; "" elsewhere.
func (n NetworkResource) VNI() string { return n.Options[OptionVXLANIDs] }

// Subnet is the first IPAM subnet; "" for host and none.
func (n NetworkResource) Subnet() string {
	if len(n.IPAM.Config) == 0 {
		return ""
	}
	return n.IPAM.Config[0].Subnet
}

// IPAM is a network's address management, as Docker's network.IPAM.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one address pool of a network.
type IPAMConfig struct {
	Subnet     string            `json:"Subnet,omitempty"`
	IPRange    string            `json:"IPRange,omitempty"`
	Gateway    string            `json:"Gateway,omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

// ConfigReference is Docker's; meshd has no config-only networks.
type ConfigReference struct {
	Network string `json:"Network"`
}

// EndpointResource is one endpoint of a network on the node that answers.
type EndpointResource struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// PeerInfo is a node that has the network: its name and VTEP address.
type PeerInfo struct {
	Name string `json:"Name"`
	IP   string `json:"IP"`
}

// LocalNetworkID is the 64-hex ID of a node-local network: stable for the
// node, different between nodes, as Docker's local IDs are.
func LocalNetworkID(node, name string) string {
	return hashID("meshd-local-network", node, name)
}

// EndpointID is the 64-hex ID of the endpoint key (a container ID, or a
// sandbox's key) on a network: derived, so every read gives the same.
func EndpointID(networkID, key string) string {
	return hashID("meshd-endpoint", networkID, key)
}

// PeerName is a node's name in Peers, shaped as Docker's gossip names
// (hostname-<12 hex>).
func PeerName(nodeID, hostname string) string {
	return hostname + "-" + hashID("meshd-peer", nodeID)[:12]
}

func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
