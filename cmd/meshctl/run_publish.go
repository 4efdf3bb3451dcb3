package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// parseRunPublish reads docker run's -p: [[HOST_IP:]HOST_PORT:]PORT[/PROTO],
// as "8080:80", "80" (an ephemeral host port), "127.0.0.1:8080:80",
// "127.0.0.1::80", "[::1]:8080:80" and "8080:80/udp". A host port of 0 or
// none is ephemeral: meshd picks one from [api.EphemeralPortFirst] up.
// The errors are docker's (go-connections' ParsePortSpec). Port ranges
// ("8000-8001:80-81"), which docker accepts, are refused: a standalone
// container's port is one host port and one container port.
func parseRunPublish(s string) (api.ContainerPort, error) {
	ip, host, port := splitPublish(s)
	proto, port := splitProto(port)
	p := api.ContainerPort{Proto: proto}
	if strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]") {
		ip = ip[1 : len(ip)-1] // IPv6 in brackets, as a URL has it
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("invalid IP address: %s", ip)
		}
		p.HostIP = a.String()
	}
	if port == "" {
		return p, fmt.Errorf("no port specified: %s<empty>", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return p, fmt.Errorf("invalid containerPort: %s", port)
	}
	p.Port = uint16(n)
	if host != "" {
		n, err := strconv.ParseUint(host, 10, 16)
		if err != nil {
			return p, fmt.Errorf("invalid hostPort: %s", host)
		}
		p.HostPort = uint16(n)
	}
	switch strings.ToLower(proto) {
	case api.ProtoTCP, api.ProtoUDP:
		p.Proto = strings.ToLower(proto)
	default:
		return p, fmt.Errorf("invalid proto: %s", proto)
	}
	return p, nil
}

// splitPublish cuts a -p value into its host IP, host port and container
// port (with its protocol) as docker does: from the right, so that an
// IPv6 address keeps its colons.
func splitPublish(s string) (ip, host, port string) {
	parts := strings.Split(s, ":")
	n := len(parts)
	switch n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	}
	return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
}

// splitProto cuts "80/udp" into udp and 80; no protocol is tcp, and an
// empty port stays empty for the caller to refuse.
func splitProto(s string) (proto, port string) {
	port, proto, _ = strings.Cut(s, "/")
	if proto == "" {
		proto = api.ProtoTCP
	}
	return proto, port
}
