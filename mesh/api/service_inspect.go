package api

import "time"

// ServiceResource is a service as docker service inspect shows it: the
// spec as it was asked for, and the endpoint as the manager made it.
type ServiceResource struct {
	ID            string          `json:"ID"`
	Version       ObjectVersion   `json:"Version"`
	CreatedAt     time.Time       `json:"CreatedAt"`
	UpdatedAt     time.Time       `json:"UpdatedAt"`
	Spec          ServiceSpecDoc  `json:"Spec"`
	PreviousSpec  *ServiceSpecDoc `json:"PreviousSpec,omitempty"`
	Endpoint      ServiceEndpoint `json:"Endpoint"`
	UpdateStatus  *UpdateStatus   `json:"UpdateStatus,omitempty"`
	ServiceStatus ServiceStatus   `json:"ServiceStatus"`
}

// ObjectVersion is the version of a cluster object: the manager's state
// version that last changed it.
type ObjectVersion struct {
	Index uint64 `json:"Index"`
}

// ServiceSpecDoc is docker's ServiceSpec.
type ServiceSpecDoc struct {
	Name           string            `json:"Name"`
	Labels         map[string]string `json:"Labels"`
	TaskTemplate   TaskTemplate      `json:"TaskTemplate"`
	Mode           ServiceModeDoc    `json:"Mode"`
	UpdateConfig   *UpdateConfigDoc  `json:"UpdateConfig,omitempty"`
	RollbackConfig *UpdateConfigDoc  `json:"RollbackConfig,omitempty"`
	EndpointSpec   EndpointSpec      `json:"EndpointSpec"`
}

// TaskTemplate is docker's: what each task runs and where.
type TaskTemplate struct {
	ContainerSpec ContainerSpec       `json:"ContainerSpec"`
	RestartPolicy RestartPolicy       `json:"RestartPolicy"`
	Placement     Placement           `json:"Placement"`
	Networks      []NetworkAttachment `json:"Networks,omitempty"`
	ForceUpdate   uint64              `json:"ForceUpdate"`
	Runtime       string              `json:"Runtime"`
}

// ContainerSpec is the image, its arguments and environment; Command is
// set for a host command, which has no image.
type ContainerSpec struct {
	Image   string   `json:"Image,omitempty"`
	Command []string `json:"Command,omitempty"`
	Args    []string `json:"Args,omitempty"`
	Env     []string `json:"Env,omitempty"`
}

// Placement holds the placement constraints.
type Placement struct {
	Constraints []string `json:"Constraints,omitempty"`
}

// ServiceModeDoc is docker's mode: one of the two is set.
type ServiceModeDoc struct {
	Replicated *ReplicatedMode `json:"Replicated,omitempty"`
	Global     *struct{}       `json:"Global,omitempty"`
}

// ReplicatedMode is the number of tasks of a replicated service.
type ReplicatedMode struct {
	Replicas int `json:"Replicas"`
}

// UpdateConfigDoc is docker's update and rollback configuration.
type UpdateConfigDoc struct {
	Parallelism     uint64        `json:"Parallelism"`
	Delay           time.Duration `json:"Delay,omitempty"`
	FailureAction   string        `json:"FailureAction"`
	Monitor         time.Duration `json:"Monitor,omitempty"`
	MaxFailureRatio int           `json:"MaxFailureRatio"`
	Order           string        `json:"Order"`
}

// EndpointSpec is how the service is reached, as asked for.
type EndpointSpec struct {
	Mode  string       `json:"Mode"`
	Ports []PortConfig `json:"Ports,omitempty"`
}

// ServiceEndpoint is how the service is reached, as made: its ports and
// a virtual IP on each of its networks.
type ServiceEndpoint struct {
	Spec       EndpointSpec `json:"Spec"`
	Ports      []PortConfig `json:"Ports,omitempty"`
	VirtualIPs []VirtualIP  `json:"VirtualIPs,omitempty"`
}

// ServiceStatus counts the tasks, as docker's service ls reads them.
type ServiceStatus struct {
	RunningTasks int `json:"RunningTasks"`
	DesiredTasks int `json:"DesiredTasks"`
}

// Resource shows the service as docker service inspect does.
func (s Service) Resource() ServiceResource {
	r := ServiceResource{ID: s.ID, Version: ObjectVersion{Index: s.Version}, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Spec: s.specDoc(s.Spec()), UpdateStatus: s.UpdateStatus,
		Endpoint: ServiceEndpoint{Spec: EndpointSpec{Mode: s.Endpoint.Mode, Ports: s.Endpoint.Ports},
			Ports: s.Endpoint.Ports, VirtualIPs: s.Endpoint.VirtualIPs},
		ServiceStatus: ServiceStatus{RunningTasks: s.Running, DesiredTasks: s.Replicas}}
	if s.PreviousSpec != nil {
		prev := s.specDoc(*s.PreviousSpec)
		r.PreviousSpec = &prev
	}
	return r
}

// specDoc is spec in docker's shape; the name, mode, constraints and
// endpoint mode are the service's, which an update does not change.
func (s Service) specDoc(spec ServiceSpec) ServiceSpecDoc {
	cs := ContainerSpec{Image: spec.Image, Args: spec.Args, Env: spec.Env}
	if spec.Image == "" && len(spec.Args) > 0 { // a host command
		cs.Command, cs.Args = spec.Args[:1], spec.Args[1:]
		if len(cs.Args) == 0 {
			cs.Args = nil
		}
	}
	d := ServiceSpecDoc{Name: s.Name, Labels: map[string]string{},
		TaskTemplate: TaskTemplate{ContainerSpec: cs, RestartPolicy: spec.RestartPolicy,
			Placement: Placement{Constraints: s.Constraints}, Networks: spec.Networks, ForceUpdate: spec.ForceUpdate, Runtime: "container"},
		UpdateConfig: updateConfigDoc(spec.UpdateConfig), RollbackConfig: updateConfigDoc(spec.RollbackConfig),
		EndpointSpec: EndpointSpec{Mode: s.Endpoint.Mode, Ports: spec.Ports}}
	if s.Mode == ModeGlobal {
		d.Mode.Global = &struct{}{}
	} else {
		d.Mode.Replicated = &ReplicatedMode{Replicas: spec.Replicas}
	}
	return d
}

func updateConfigDoc(c UpdateConfig) *UpdateConfigDoc {
	if c == (UpdateConfig{}) {
		return nil
	}
	return &UpdateConfigDoc{Parallelism: c.Parallelism, Delay: c.Delay, FailureAction: c.FailureAction, Monitor: c.Monitor, Order: c.Order}
}
