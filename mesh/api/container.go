package api

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A task is what docker runs as a container: ps lists the answering
// node's tasks as containers, inspect shows one in docker's shape, logs
// prints its output. This file holds that shape and how a container
// reference names a task.

// Container is a task as docker inspect shows a container: the fields
// that mean something for a task, under docker's names.
type Container struct {
	ID      string    `json:"Id"` // the 64-hex container ID, Task.ContainerID
	Created time.Time `json:"Created"`
	// Path and Args are the command line: the image's program or the
	// first word of a host command, and the rest.
	Path            string                  `json:"Path"`
	Args            []string                `json:"Args"`
	State           ContainerState          `json:"State"`
	Image           string                  `json:"Image"`
	Name            string                  `json:"Name"` // "/" + ContainerName
	Config          ContainerConfig         `json:"Config"`
	NetworkSettings ContainerNetworkSetting `json:"NetworkSettings"`
	// Node is where the task runs (docker's swarm classic field).
	Node ContainerNode `json:"Node"`
}

// ContainerState is the state of a task's process, in docker's words.
type ContainerState struct {
	Status  string `json:"Status"` // created, running or exited
	Running bool   `json:"Running"`
	Pid     int    `json:"Pid"`
	// ExitCode is the process's status once it is known: nil for a task
	// stopped by its node, which reports no status.
	ExitCode   *int      `json:"ExitCode,omitempty"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`  // when its process was reported running; zero once ended
	FinishedAt time.Time `json:"FinishedAt"` // when its end was reported
}

// ContainerConfig is the task's spec, as docker's container config.
type ContainerConfig struct {
	Hostname string            `json:"Hostname"` // the 12-hex hostname the task runs with
	Image    string            `json:"Image"`
	Cmd      []string          `json:"Cmd"`
	Labels   map[string]string `json:"Labels"` // docker's com.docker.swarm.* labels
}

// ContainerNetworkSetting is where the task's network lives: its network
// namespace file (SandboxKey, for nsenter --net) and its interfaces.
type ContainerNetworkSetting struct {
	SandboxID  string                       `json:"SandboxID"`
	SandboxKey string                       `json:"SandboxKey"`
	Ports      map[string][]PortBinding     `json:"Ports"` // host-mode published ports: "80/tcp" → bindings
	Networks   map[string]ContainerEndpoint `json:"Networks"`
}

// PortBinding is one host port a target port is published on.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// ContainerEndpoint is the task's interface on one network.
type ContainerEndpoint struct {
	NetworkID   string   `json:"NetworkID"`
	EndpointID  string   `json:"EndpointID"`
	IPAddress   string   `json:"IPAddress"`
	IPPrefixLen int      `json:"IPPrefixLen"`
	MacAddress  string   `json:"MacAddress"`
	Aliases     []string `json:"Aliases"`
}

// ContainerNode names the node a task runs on.
type ContainerNode struct {
	ID   string `json:"ID"`
	Name string `json:"Name"`
}

// Docker's swarm labels on a task's container.
const (
	LabelNodeID      = "com.docker.swarm.node.id"
	LabelServiceID   = "com.docker.swarm.service.id"
	LabelServiceName = "com.docker.swarm.service.name"
	LabelTask        = "com.docker.swarm.task"
	LabelTaskID      = "com.docker.swarm.task.id"
	LabelTaskName    = "com.docker.swarm.task.name"
)

// ContainerName is docker's name for a task's container:
// <service>.<slot>.<task ID>, as ps prints it.
func ContainerName(t Task) string {
	if t.Standalone != nil {
		return t.Standalone.Name
	}
	return t.Name() + "." + t.ID
}

// ContainerStatus is docker's word for the state of a task's container:
// created until its process runs, exited once it has ended.
func ContainerStatus(taskState string) string {
	switch taskState {
	case TaskRunning:
		return "running"
	case TaskComplete, TaskFailed, TaskShutdown:
		return "exited"
	}
	return "created"
}

// ExitCode is the status a task's process exited with, when its node
// reported one: its ExitCode, which a stopped process's report carries
// too (143 for the stop's SIGTERM); else, from a node that reports no
// ExitCode, 0 for complete and N for a failure mesh/task reports as
// "task: non-zero exit (N)". A task that failed to start has none, nor
// one a manager stopped before its node said how it ended.
func ExitCode(s TaskStatus) (int, bool) {
	if s.ExitCode != nil {
		return *s.ExitCode, true
	}
	switch s.State {
	case TaskComplete:
		return 0, true
	case TaskFailed:
		var code int
		if _, err := fmt.Sscanf(s.Err, "task: non-zero exit (%d)", &code); err == nil {
			return code, true
		}
	}
	return 0, false
}

// ContainerExitCode is the status docker shows for t's exited container:
// the one its foreground command ended with, which run reported when it
// stopped the container (Standalone.ExitCode), or else the task's own.
func ContainerExitCode(t Task) (int, bool) {
	if ContainerStatus(t.Status.State) != "exited" {
		return 0, false
	}
	if sa := t.Standalone; sa != nil && sa.ExitCode != nil {
		return *sa.ExitCode, true
	}
	return ExitCode(t.Status)
}

// NewContainer shows task t of service svc as docker inspect shows a
// swarm task's container.
func NewContainer(t Task, svc Service) Container {
	c := Container{
		ID: t.ContainerID(), Created: t.CreatedAt, Image: t.Image, Name: "/" + ContainerName(t),
		Config: ContainerConfig{Hostname: t.Hostname(), Image: t.Image, Cmd: t.Args, Labels: map[string]string{
			LabelNodeID: t.NodeID, LabelServiceID: t.ServiceID, LabelServiceName: t.ServiceName,
			LabelTask: "", LabelTaskID: t.ID, LabelTaskName: ContainerName(t),
		}},
		NetworkSettings: ContainerNetworkSetting{SandboxID: t.ContainerID(), SandboxKey: t.Status.Sandbox,
			Ports: map[string][]PortBinding{}, Networks: map[string]ContainerEndpoint{}},
		Node: ContainerNode{ID: t.NodeID, Name: t.NodeName},
	}
	// The command line: an image's program with the service's arguments,
	// or a host command.
	c.Path, c.Args = t.Image, t.Args
	if t.Image == "" && len(t.Args) > 0 {
		c.Path, c.Args = t.Args[0], t.Args[1:]
	}
	if c.Args == nil {
		c.Args = []string{}
	}
	c.State = containerState(t)
	if sa := t.Standalone; sa != nil {
		c.Config.Labels = map[string]string{}
		if c.State.Running {
			for _, p := range sa.Ports {
				key := strconv.Itoa(int(p.Port)) + "/" + p.Proto
				ip := p.HostIP
				if ip == "" {
					ip = "0.0.0.0"
				}
				c.NetworkSettings.Ports[key] = append(c.NetworkSettings.Ports[key],
					PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
			}
		}
	}
	if c.State.Running {
		for _, p := range svc.Endpoint.Ports {
			if p.PublishMode == PublishHost {
				key := strconv.Itoa(int(p.TargetPort)) + "/" + p.Protocol
				c.NetworkSettings.Ports[key] = append(c.NetworkSettings.Ports[key],
					PortBinding{HostIP: "0.0.0.0", HostPort: strconv.Itoa(int(p.PublishedPort))})
			}
		}
	}
	for _, tn := range t.Networks {
		ep := ContainerEndpoint{NetworkID: tn.NetworkID, EndpointID: EndpointID(tn.NetworkID, t.ContainerID()), MacAddress: tn.MAC,
			Aliases: []string{}}
		if p, err := netip.ParsePrefix(tn.Addr); err == nil {
			ep.IPAddress, ep.IPPrefixLen = p.Addr().String(), p.Bits()
		}
		ep.Aliases = append(ep.Aliases, tn.Aliases...)
		for _, a := range svc.Networks {
			if a.Target == tn.NetworkID || a.Target == tn.NetworkName {
				ep.Aliases = append(ep.Aliases, a.Aliases...)
			}
		}
		c.NetworkSettings.Networks[tn.NetworkName] = ep
	}
	return c
}

// containerState is a task's reported status as docker's container
// state.
func containerState(t Task) ContainerState {
	s := t.Status
	cs := ContainerState{Status: ContainerStatus(s.State), Error: s.Err}
	switch cs.Status {
	case "running":
		cs.Running, cs.Pid, cs.StartedAt = true, s.PID, s.Timestamp
		cs.ExitCode = new(int)
	case "exited":
		cs.FinishedAt = s.Timestamp
		if code, ok := ContainerExitCode(t); ok {
			cs.ExitCode = &code
		}
	default:
		cs.ExitCode = new(int)
	}
	return cs
}

// MatchContainer picks the task ref names, in docker's order: a full ID
// (the 64-hex container ID or the task ID), then a name (the container
// name ps prints, or the task name www.1, which only the current task of
// a slot answers to), then a unique prefix of either ID, or a container
// name cut inside its task ID (www.1.<ID prefix>, what service ps -q
// gives). A reference nothing matches is a 404 "No such container".
func MatchContainer(tasks []Task, ref string) (Task, error) {
	steps := []func(Task) bool{
		func(t Task) bool { return ref == t.ContainerID() || ref == t.ID },
		func(t Task) bool { return ref == ContainerName(t) || (t.Current() && ref == t.Name()) },
		func(t Task) bool {
			if ref == "" {
				return false
			}
			if strings.HasPrefix(t.ContainerID(), ref) || strings.HasPrefix(t.ID, ref) {
				return true
			}
			name := t.Name() + "."
			return len(ref) > len(name) && strings.HasPrefix(ContainerName(t), ref)
		},
	}
	for _, match := range steps {
		var found []Task
		for _, t := range tasks {
			if match(t) {
				found = append(found, t)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		}
		return Task{}, ambiguousContainer(ref, found)
	}
	return Task{}, NotFound("No such container: %s", Clip(ref))
}

// ambiguousContainer is the one-line error for a reference several tasks
// answer to, naming a few of them so the user can pick a longer prefix.
func ambiguousContainer(ref string, found []Task) error {
	names := make([]string, len(found))
	for i, t := range found {
		names[i] = ContainerName(t)
	}
	slices.Sort(names)
	const shown = 3
	more := ""
	if len(names) > shown {
		more = fmt.Sprintf(" and %d more", len(names)-shown)
		names = names[:shown]
	}
	return Invalid("multiple containers match %s: %s%s", Quote(ref), strings.Join(names, ", "), more)
}
