// Package container is Docker's single-host networking on one node:
// local bridge networks (network create dev, and the default bridge) and
// the standalone containers meshctl run puts on them, with their names in
// the embedded DNS, their published ports and their isolation. It keeps
// both in a state file in the run dir, so that they come back after a
// meshd restart, and reconciles the kernel towards it: the bridges
// (overlay.GatewayBridge), the host rules (lb.BridgeRules) and each
// container's sandbox.
//
// It needs no swarm: a node in no cluster runs containers too, as Docker
// does before swarm init.
package container
