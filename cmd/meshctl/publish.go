package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// parsePublish reads docker's two --publish syntaxes:
// "8888:80", "8888:80/udp", "80" (published = target), and
// "mode=host,published=8080,target=80,protocol=udp".
func parsePublish(s string) (api.PortConfig, error) {
	if strings.Contains(s, "=") {
		return parsePublishLong(s)
	}
	p := api.PortConfig{Protocol: api.ProtoTCP, PublishMode: api.PublishIngress}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		p.Protocol = proto
	}
	pub, target, hasTarget := strings.Cut(spec, ":")
	if !hasTarget {
		target = pub
	}
	var err error
	if p.PublishedPort, err = portNumber(pub); err != nil {
		return p, fmt.Errorf("invalid --publish %q: %w", s, err)
	}
	if p.TargetPort, err = portNumber(target); err != nil {
		return p, fmt.Errorf("invalid --publish %q: %w", s, err)
	}
	return p, checkProto(s, p.Protocol)
}

func parsePublishLong(s string) (api.PortConfig, error) {
	p := api.PortConfig{Protocol: api.ProtoTCP, PublishMode: api.PublishIngress}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "mode":
			p.PublishMode = v
		case "published":
			p.PublishedPort, err = portNumber(v)
		case "target":
			p.TargetPort, err = portNumber(v)
		case "protocol":
			p.Protocol = v
		default:
			return p, fmt.Errorf("invalid --publish %q: unknown key %q (want mode, published, target, protocol)", s, k)
		}
		if err != nil {
			return p, fmt.Errorf("invalid --publish %q: %w", s, err)
		}
	}
	if p.TargetPort == 0 {
		return p, fmt.Errorf("invalid --publish %q: target= is required", s)
	}
	if p.PublishedPort == 0 {
		p.PublishedPort = p.TargetPort
	}
	if p.PublishMode != api.PublishIngress && p.PublishMode != api.PublishHost {
		return p, fmt.Errorf("invalid --publish %q: mode must be ingress or host", s)
	}
	return p, checkProto(s, p.Protocol)
}

func portNumber(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range 1-65535", s)
	}
	return uint16(n), nil
}

func checkProto(s, proto string) error {
	if proto != api.ProtoTCP && proto != api.ProtoUDP {
		return fmt.Errorf("invalid --publish %q: unknown protocol %q (want tcp or udp)", s, proto)
	}
	return nil
}
