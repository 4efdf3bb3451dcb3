package lb

// GatewayBridgeName is the host bridge that gives tasks their way out and
// the ingress sandbox its way in (Swarm's docker_gwbridge).
const GatewayBridgeName = "mesh_gwbridge"
