package api

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Network drivers and scopes, as docker network ls prints them.
const (
	DriverOverlay = "overlay"
	ScopeSwarm    = "swarm"
	IngressName   = "ingress"
)

// Network is an overlay network as the manager keeps it; the API shows
// it as a [NetworkResource].
type Network struct {
	ID           string            `json:"ID"`
	Name         string            `json:"Name"`
	Driver       string            `json:"Driver"`
	Scope        string            `json:"Scope"`
	Subnet       string            `json:"Subnet"`
	Gateway      string            `json:"Gateway"`
	IPRange      string            `json:"IPRange,omitempty"`
	AuxAddresses map[string]string `json:"AuxAddresses,omitempty"`
	VNI          uint32            `json:"VNI"`
	Ingress      bool              `json:"Ingress,omitempty"`
	Internal     bool              `json:"Internal,omitempty"`
	Attachable   bool              `json:"Attachable,omitempty"`
	CreatedAt    time.Time         `json:"CreatedAt"`
	// LBAddrs is each node's own address on the network (node ID → CIDR):
	// its ingress sandbox's or LB sandbox's eth0, the SNAT source there.
	LBAddrs map[string]string `json:"LBAddrs,omitempty"`
}

// NetworkCreate is what network create sends.
type NetworkCreate struct {
	Name         string            `json:"Name"`
	Driver       string            `json:"Driver,omitempty"`
	Subnet       string            `json:"Subnet,omitempty"`
	Gateway      string            `json:"Gateway,omitempty"`
	IPRange      string            `json:"IPRange,omitempty"`
	AuxAddresses map[string]string `json:"AuxAddresses,omitempty"`
	Internal     bool              `json:"Internal,omitempty"`
	Attachable   bool              `json:"Attachable,omitempty"`
}

// NetworkAttachment ties a service to a network, with its aliases there.
type NetworkAttachment struct {
	Target  string   `json:"Target"` // network ID (a name is accepted on create)
	Aliases []string `json:"Aliases,omitempty"`
}

// Service is a replicated service as the manager keeps it.
type Service struct {
	ID    string   `json:"ID"`
	Name  string   `json:"Name"`
	Image string   `json:"Image"`
	Args  []string `json:"Args,omitempty"`
	// Env is the tasks' environment, KEY=VALUE (Docker's --env).
	Env []string `json:"Env,omitempty"`
	// Mode is replicated or global (Docker's --mode). Replicas of a global
	// service is kept by the manager: the nodes eligible to run it.
	Mode     string `json:"Mode,omitempty"`
	Replicas int    `json:"Replicas"`
	// Constraints are Docker's placement constraints (node.hostname==x):
	// a task goes only to a node that satisfies all of them.
	Constraints []string            `json:"Constraints,omitempty"`
	Networks    []NetworkAttachment `json:"Networks,omitempty"`
	Endpoint    Endpoint            `json:"Endpoint"`
	// RestartPolicy says what the manager does when a task exits.
	RestartPolicy RestartPolicy `json:"RestartPolicy"`
	// UpdateConfig says how an update replaces the tasks, RollbackConfig
	// how a rollback does.
	UpdateConfig   UpdateConfig `json:"UpdateConfig,omitzero"`
	RollbackConfig UpdateConfig `json:"RollbackConfig,omitzero"`
	// ForceUpdate counts the updates forced (--force): a task made before
	// the last one is replaced even if nothing else changed.
	ForceUpdate uint64 `json:"ForceUpdate,omitempty"`
	// PreviousSpec is the spec before the last update, which a rollback
	// restores; UpdateStatus is the last update's or rollback's progress.
	PreviousSpec *ServiceSpec  `json:"PreviousSpec,omitempty"`
	UpdateStatus *UpdateStatus `json:"UpdateStatus,omitempty"`
	Version      uint64        `json:"Version"`
	CreatedAt    time.Time     `json:"CreatedAt"`
	UpdatedAt    time.Time     `json:"UpdatedAt"`
	// Running is filled by ls and inspect: tasks reported running.
	Running int `json:"Running"`
	// Reachable is filled by ls and inspect: the running tasks that every
	// ready node balancing or resolving to them has programmed (peer,
	// backend, name), so that a first packet from anywhere reaches them.
	Reachable int `json:"Reachable,omitempty"`
}

// Restart conditions, as docker service create --restart-condition.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
)

// DefaultRestartDelay is Docker's --restart-delay default.
const DefaultRestartDelay = 5 * time.Second

// RestartPolicy is what happens to a slot whose task exited: a new task
// (new ID, same slot) is made after Delay when Condition allows it and
// the slot has had fewer than MaxAttempts restarts.
type RestartPolicy struct {
	Condition string        `json:"Condition"` // none, on-failure or any
	Delay     time.Duration `json:"Delay"`
	// MaxAttempts bounds the restarts of a slot; 0 means no bound.
	MaxAttempts int `json:"MaxAttempts"`
	// Window, when set, counts only the restarts of the last Window
	// against MaxAttempts (Docker's --restart-window).
	Window time.Duration `json:"Window,omitempty"`
}

// Publish modes and protocols.
const (
	PublishIngress = "ingress"
	PublishHost    = "host"
	ProtoTCP       = "tcp"
	ProtoUDP       = "udp"
)

// Endpoint modes.
const (
	EndpointModeVIP   = "vip"
	EndpointModeDNSRR = "dnsrr"
)

// Endpoint is how a service is reached.
type Endpoint struct {
	Mode       string       `json:"Mode"`
	Ports      []PortConfig `json:"Ports,omitempty"`
	VirtualIPs []VirtualIP  `json:"VirtualIPs,omitempty"`
}

// PortConfig is one published port.
type PortConfig struct {
	Protocol      string `json:"Protocol"`      // tcp or udp
	TargetPort    uint16 `json:"TargetPort"`    // in the task
	PublishedPort uint16 `json:"PublishedPort"` // on every node (ingress) or on the task's node (host)
	PublishMode   string `json:"PublishMode"`   // ingress or host
}

// VirtualIP is a service's address on one network.
type VirtualIP struct {
	NetworkID string `json:"NetworkID"`
	Addr      string `json:"Addr"` // CIDR
}

// ServiceCreate is what service create sends.
type ServiceCreate struct {
	Name         string              `json:"Name"`
	Image        string              `json:"Image"`
	Args         []string            `json:"Args,omitempty"`
	Mode         string              `json:"Mode,omitempty"`     // "" is replicated
	Replicas     *int                `json:"Replicas,omitempty"` // nil: 1; set only in replicated mode
	Constraints  []string            `json:"Constraints,omitempty"`
	Networks     []NetworkAttachment `json:"Networks,omitempty"`
	EndpointMode string              `json:"EndpointMode,omitempty"`
	Ports        []PortConfig        `json:"Ports,omitempty"`
	// RestartPolicy is nil for Docker's: any, 5 s, no bound.
	RestartPolicy *RestartPolicy `json:"RestartPolicy,omitempty"`
	Env           []string       `json:"Env,omitempty"`
	// UpdateConfig and RollbackConfig are nil for Docker's defaults
	// (see [DefaultUpdateConfig]).
	UpdateConfig   *UpdateConfig `json:"UpdateConfig,omitempty"`
	RollbackConfig *UpdateConfig `json:"RollbackConfig,omitempty"`
}

// Update orders and failure actions, as docker service update's
// --update-order and --update-failure-action.
const (
	OrderStopFirst  = "stop-first"
	OrderStartFirst = "start-first"
	ActionPause     = "pause"
	ActionContinue  = "continue"
	ActionRollback  = "rollback"
)

// UpdateConfig is how an update (or a rollback) replaces a service's
// tasks: Parallelism at a time (0: all at once), waiting Delay after each
// batch is running and reachable; stop-first stops the old task before
// its replacement starts, start-first the other way round. A new task
// that fails or ends within Monitor of its batch being done is a failure
// of the update too, and the update is complete only once the last
// batch has lasted Monitor.
type UpdateConfig struct {
	Parallelism   uint64        `json:"Parallelism"`
	Delay         time.Duration `json:"Delay,omitempty"`
	FailureAction string        `json:"FailureAction"`
	Monitor       time.Duration `json:"Monitor,omitempty"`
	Order         string        `json:"Order"`
}

// DefaultMonitor is Docker's --update-monitor and --rollback-monitor.
const DefaultMonitor = 5 * time.Second

// DefaultUpdateConfig is Docker's: one task at a time, no delay, pause
// on failure, each task watched for 5 s, stop-first.
func DefaultUpdateConfig() UpdateConfig {
	return UpdateConfig{Parallelism: 1, FailureAction: ActionPause, Monitor: DefaultMonitor, Order: OrderStopFirst}
}

// ServiceSpec is the part of a service an update changes and a rollback
// restores.
type ServiceSpec struct {
	Image          string              `json:"Image"`
	Args           []string            `json:"Args,omitempty"`
	Env            []string            `json:"Env,omitempty"`
	Replicas       int                 `json:"Replicas"`
	Networks       []NetworkAttachment `json:"Networks,omitempty"`
	Ports          []PortConfig        `json:"Ports,omitempty"`
	RestartPolicy  RestartPolicy       `json:"RestartPolicy"`
	UpdateConfig   UpdateConfig        `json:"UpdateConfig,omitzero"`
	RollbackConfig UpdateConfig        `json:"RollbackConfig,omitzero"`
	ForceUpdate    uint64              `json:"ForceUpdate,omitempty"`
}

// Spec is the part of the service an update changes.
func (s Service) Spec() ServiceSpec {
	return ServiceSpec{Image: s.Image, Args: s.Args, Env: s.Env, Replicas: s.Replicas,
		Networks: s.Networks, Ports: s.Endpoint.Ports, RestartPolicy: s.RestartPolicy,
		UpdateConfig: s.UpdateConfig, RollbackConfig: s.RollbackConfig, ForceUpdate: s.ForceUpdate}
}

// Update states, as Docker's UpdateStatus.State.
const (
	UpdateUpdating          = "updating"
	UpdatePaused            = "paused"
	UpdateCompleted         = "completed"
	UpdateRollbackStarted   = "rollback_started"
	UpdateRollbackPaused    = "rollback_paused"
	UpdateRollbackCompleted = "rollback_completed"
)

// UpdateStatus is the progress of a service's last update or rollback.
type UpdateStatus struct {
	State       string    `json:"State"`
	StartedAt   time.Time `json:"StartedAt"`
	CompletedAt time.Time `json:"CompletedAt,omitzero"`
	Message     string    `json:"Message"`
}

// Rolling says whether an update or rollback is replacing tasks.
func (u *UpdateStatus) Rolling() bool {
	return u != nil && (u.State == UpdateUpdating || u.State == UpdateRollbackStarted)
}

// ServiceUpdate is the body of service update: each field set changes
// the spec, the others keep it.
type ServiceUpdate struct {
	Image      *string             `json:"Image,omitempty"`
	Args       *[]string           `json:"Args,omitempty"`
	Replicas   *int                `json:"Replicas,omitempty"`
	EnvAdd     []string            `json:"EnvAdd,omitempty"`
	EnvRm      []string            `json:"EnvRm,omitempty"`
	PublishAdd []PortConfig        `json:"PublishAdd,omitempty"`
	PublishRm  []PortConfig        `json:"PublishRm,omitempty"` // by published port and protocol
	NetworkAdd []NetworkAttachment `json:"NetworkAdd,omitempty"`
	NetworkRm  []string            `json:"NetworkRm,omitempty"`
	// Update and Rollback change the fields of the configs they set.
	Update   *UpdateConfigChange `json:"UpdateConfig,omitempty"`
	Rollback *UpdateConfigChange `json:"RollbackConfig,omitempty"`
	// Force replaces the tasks even if nothing else changed.
	Force bool `json:"Force,omitempty"`
}

// UpdateConfigChange sets the fields of an [UpdateConfig] that are not nil.
type UpdateConfigChange struct {
	Parallelism   *uint64        `json:"Parallelism,omitempty"`
	Delay         *time.Duration `json:"Delay,omitempty"`
	FailureAction *string        `json:"FailureAction,omitempty"`
	Monitor       *time.Duration `json:"Monitor,omitempty"`
	Order         *string        `json:"Order,omitempty"`
}

// MaxEnv bounds a service's environment entries, MaxEnvBytes their total
// length.
const (
	MaxEnv      = 64
	MaxEnvBytes = 8 << 10
)

// CheckEnv refuses an environment over the bounds, or with an entry that
// is not KEY=VALUE with a KEY, or that holds a NUL byte.
func CheckEnv(env []string) error {
	if err := checkCount("environment variables", len(env), MaxEnv); err != nil {
		return err
	}
	total := 0
	for _, e := range env {
		total += len(e)
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			return Invalid("invalid environment variable %s: want KEY=VALUE", Quote(e))
		}
	}
	if total > MaxEnvBytes {
		return Invalid("environment too long: %d bytes, at most %d", total, MaxEnvBytes)
	}
	return nil
}

// CheckSizes refuses a service update whose fields are over the limits.
func (u ServiceUpdate) CheckSizes() error {
	if u.Image != nil {
		if err := checkLens(sizeCheck{"image", *u.Image, MaxImageLen}); err != nil {
			return err
		}
	}
	if u.Args != nil {
		if err := (ServiceCreate{Args: *u.Args}).CheckSizes(); err != nil {
			return err
		}
	}
	if err := checkCount("environment variables", len(u.EnvAdd)+len(u.EnvRm), 2*MaxEnv); err != nil {
		return err
	}
	for _, e := range append(slices.Clone(u.EnvAdd), u.EnvRm...) {
		if err := checkLens(sizeCheck{"environment variable", e, MaxEnvBytes}); err != nil {
			return err
		}
	}
	if err := (ServiceCreate{Ports: append(slices.Clone(u.PublishAdd), u.PublishRm...), Networks: u.NetworkAdd}).CheckSizes(); err != nil {
		return err
	}
	if err := checkCount("networks", len(u.NetworkRm), MaxNetworks); err != nil {
		return err
	}
	for _, n := range u.NetworkRm {
		if err := checkLens(sizeCheck{"network", n, MaxRefLen}); err != nil {
			return err
		}
	}
	for _, c := range []*UpdateConfigChange{u.Update, u.Rollback} {
		if c == nil {
			continue
		}
		for _, v := range []*string{c.FailureAction, c.Order} {
			if v != nil {
				if err := checkLens(sizeCheck{"update setting", *v, MaxRefLen}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ServiceScale is the body of service scale.
type ServiceScale struct {
	Replicas int `json:"Replicas"`
}

// Task states, in the order a task goes through them.
const (
	TaskNew      = "new"
	TaskAssigned = "assigned"
	TaskStarting = "starting"
	TaskRunning  = "running"
	TaskComplete = "complete" // the process exited with status 0
	TaskFailed   = "failed"
	TaskShutdown = "shutdown"
)

// Task is one replica of a service, placed on a node.
type Task struct {
	ID          string   `json:"ID"`
	ServiceID   string   `json:"ServiceID"`
	ServiceName string   `json:"ServiceName"`
	Slot        int      `json:"Slot"`
	NodeID      string   `json:"NodeID"`
	Image       string   `json:"Image"`
	Args        []string `json:"Args,omitempty"`
	Env         []string `json:"Env,omitempty"`
	// ForceUpdate is the service's when the task was made (see
	// Service.ForceUpdate).
	ForceUpdate uint64 `json:"ForceUpdate,omitempty"`
	// DesiredState is running for a slot's current task and shutdown
	// for the ones kept as its history.
	DesiredState string        `json:"DesiredState"`
	Networks     []TaskNetwork `json:"Networks,omitempty"`
	CreatedAt    time.Time     `json:"CreatedAt"`
	// Restarts counts the restarts of the slot before this task, which
	// RestartPolicy.MaxAttempts bounds.
	Restarts int `json:"Restarts,omitempty"`
	// EndedAt is when the manager shut the task down; zero while it is
	// current.
	EndedAt time.Time `json:"EndedAt,omitzero"`
	// Status is the node's report, filled on reads; a task shut down
	// keeps its last report in the manager's state.
	Status   TaskStatus `json:"Status"`
	NodeName string     `json:"NodeName,omitempty"`
	// Standalone is set for a container meshctl run made on NodeID: it
	// belongs to no service.
	Standalone *Standalone `json:"Standalone,omitempty"`
}

// Current says whether the task is its slot's current one rather than
// history.
func (t Task) Current() bool { return t.DesiredState == TaskRunning }

// Terminal says whether a reported state is final: the process ended.
func Terminal(state string) bool { return state == TaskComplete || state == TaskFailed }

// Service modes, as docker service create --mode.
const (
	ModeReplicated = "replicated"
	ModeGlobal     = "global"
)

// Name is the task's name as docker prints it: www.1, or for a global
// service's task (slot 0, one per node) www.NODEID, as docker service ps
// names them.
func (t Task) Name() string {
	if t.Standalone != nil {
		return t.Standalone.Name
	}
	if t.Slot == 0 {
		return t.ServiceName + "." + t.NodeID
	}
	return t.ServiceName + "." + itoa(t.Slot)
}

// Hostname is the task's hostname: 12 hex characters, or a standalone
// container's --hostname.
func (t Task) Hostname() string {
	if t.Standalone != nil && t.Standalone.Hostname != "" {
		return t.Standalone.Hostname
	}
	if len(t.ContainerID()) < 12 {
		return t.ContainerID()
	}
	return t.ContainerID()[:12]
}

// ContainerID is the task's sandbox ID, derived from the task ID so every
// node computes the same one; a standalone container restarted under a
// new task keeps the one it had (Standalone.ContainerID).
func (t Task) ContainerID() string {
	if t.Standalone != nil && t.Standalone.ContainerID != "" {
		return t.Standalone.ContainerID
	}
	return hexID(t.ID)
}

// AddrOf is the address of a CIDR as objects keep them ("10.0.0.3/24",
// a TaskNetwork's or a VirtualIP's Addr); invalid for anything else.
func AddrOf(cidr string) netip.Addr {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}
	}
	return p.Addr()
}

// TaskNetwork is a task's address on one network, in attach order.
type TaskNetwork struct {
	NetworkID   string `json:"NetworkID"`
	NetworkName string `json:"NetworkName"`
	Addr        string `json:"Addr"` // CIDR
	MAC         string `json:"MAC"`
	// Aliases are a standalone container's names on the network
	// (--net-alias); a service's are its attachment's.
	Aliases []string `json:"Aliases,omitempty"`
	// Connected marks a service task's network that network connect
	// added, not one of its service's: there the task answers to its
	// container name, its aliases and its short ID, as Docker's, and is
	// no backend of its service. A service update does not count it as
	// the task's spec; the task's end gives its address back.
	Connected bool `json:"Connected,omitempty"`
}

// TaskStatus is what the node running a task reports.
type TaskStatus struct {
	State     string    `json:"State"`
	Message   string    `json:"Message,omitempty"`
	Err       string    `json:"Err,omitempty"`
	Timestamp time.Time `json:"Timestamp"`
	PID       int       `json:"PID,omitempty"`
	Sandbox   string    `json:"Sandbox,omitempty"` // network namespace file
	// ExitCode is the process's exit status once it has ended, as its
	// node reported it (mesh/task's State.ExitCode); nil when unknown.
	ExitCode *int `json:"ExitCode,omitempty"`
}
