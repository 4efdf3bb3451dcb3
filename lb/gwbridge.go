package lb

// GatewayBridgeName is the host bridge that gives tasks their way out and
// the ingress sandbox its way in (Swarm's docker_gwbridge). The host rules
// match it by name. It is the only place the name is written: the daemon
// passes it to overlay.GatewayBridgeConfig.Name, since overlay (the
// devices) does not import lb (the rules).
const GatewayBridgeName = "mesh_gwbridge"
