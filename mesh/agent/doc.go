// Package agent is the node agent: it reconciles this node's kernel and
// tasks towards the cluster's tables, on every table change and every
// few seconds, so drift is repaired.
//
// Each pass computes what the node must have from the desired objects and
// the endpoint and peer tables, with pure functions (desired.go: the tasks
// to run, the networks to build, each sandbox's load-balancer model, the
// host and task rules, the DNS records), then lets the libraries diff that
// against the kernel and apply the difference: overlay for namespaces,
// links and peers, lb for rules and IPVS, dns for the resolvers. The order
// is the one a packet needs: overlay peers, balancers and names first, so
// a task that starts now reaches them with its first packet; then the new
// tasks; then the host and task rules, which depend on the tasks running.
//
// The kernel is reached only through Config's plug points (overlay.Kernel,
// lb.Rules, lb.IPVS and lb.Sysctls per namespace, the task runner
// and the resolver's socket opener); nil means the real ones. Tests plug
// overlay.FakeKernel, lb.FakeRules and lb.FakeIPVS in and run the agent
// without root.
//
// The desired state comes from records.Desired, on managers and workers
// alike: the manager's tables while they hold exactly what their head
// certifies, else the last state verified, persisted in RunDir. A manager
// that dies, restarts or hands over to a new leader takes its entries
// with it or shows them in pieces; the node then goes on serving what it
// knew (tasks, VIPs, backends, names) and converges on the republished
// state without draining or restarting anything still desired. Backends
// leave only with their task or their node. A task drained because it
// left the desired state and then came back is put back at weight 1.
package agent
