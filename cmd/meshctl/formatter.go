package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// The contexts a list's --format template runs on, one per list, with the
// fields docker's formatter gives (docker/cli cli/command/formatter and
// cli/command/task). Each embeds the meshd object, so its own fields stay
// reachable ({{.DataPlane}}, {{range .Networks}}…); where docker names a
// field the same with another meaning, docker's wins ({{.Replicas}} is
// "2/2", {{.ID}} the short ID). {{json .}} prints docker's fields.

// serviceRow is a service for service ls --format.
type serviceRow struct {
	api.Service
}

var serviceFields = map[string]string{
	"ID": "ID", "Name": "NAME", "Mode": "MODE", "Replicas": "REPLICAS", "Image": "IMAGE", "Ports": "PORTS",
}

// ID is the 12-character ID: docker's service ls has no --no-trunc.
func (s serviceRow) ID() string       { return shortID(s.Service.ID) }
func (s serviceRow) Mode() string     { return modeOf(s.Service) }
func (s serviceRow) Replicas() string { return fmt.Sprintf("%d/%d", s.Running, s.Service.Replicas) }
func (s serviceRow) Image() string    { return imageOf(s.Service.Image, s.Args) }
func (s serviceRow) Ports() string    { return portsOf(s.Endpoint.Ports) }

func (s serviceRow) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"ID": s.ID(), "Name": s.Name, "Mode": s.Mode(), "Replicas": s.Replicas(), "Image": s.Image(), "Ports": s.Ports(),
	})
}

// taskRow is a task for service ps --format. The task's own fields are
// there but for ID, Name, Image, DesiredState, which are docker's; the
// whole task is {{.Task}} ({{.Task.DesiredState}} is "running").
type taskRow struct {
	api.Task
	name    string // www.1, or " \_ www.1" for a slot's history in a table
	now     time.Time
	noTrunc bool
}

var taskFields = map[string]string{
	"ID": "ID", "Name": "NAME", "Image": "IMAGE", "Node": "NODE", "DesiredState": "DESIRED STATE",
	"CurrentState": "CURRENT STATE", "Error": "ERROR", "Ports": "PORTS",
}

func (t taskRow) ID() string {
	if t.noTrunc {
		return t.Task.ID
	}
	return shortID(t.Task.ID)
}
func (t taskRow) Name() string         { return t.name }
func (t taskRow) Image() string        { return imageOf(t.Task.Image, t.Args) }
func (t taskRow) Node() string         { return t.NodeName }
func (t taskRow) DesiredState() string { return title(t.Task.DesiredState) }
func (t taskRow) CurrentState() string { return currentState(t.Status, t.now) }
func (t taskRow) Error() string        { return taskError(t.Status.Err, t.noTrunc) }

// Ports are a task's host-mode ports in docker; meshd's tasks have none.
func (t taskRow) Ports() string { return "" }

func (t taskRow) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"ID": t.ID(), "Name": t.Name(), "Image": t.Image(), "Node": t.Node(), "DesiredState": t.DesiredState(),
		"CurrentState": t.CurrentState(), "Error": t.Error(), "Ports": t.Ports(),
	})
}

// containerRow is a task for ps --format, as docker ps shows a container.
// Status, Networks, Image and ID are docker's; the whole task is {{.Task}}
// ({{.Task.Status.Sandbox}} is its network namespace file).
type containerRow struct {
	api.Task
	ports   string // the PORTS column, from the task's container
	command string // the COMMAND column, from the task's container
	now     time.Time
	noTrunc bool
}

var containerFields = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
	"Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS",
	"Mounts": "MOUNTS", "Networks": "NETWORKS",
}

// commandWidth is how much of a command docker ps prints without
// --no-trunc.
const commandWidth = 20

// ID is the container ID, 12 hex characters without --no-trunc.
func (c containerRow) ID() string {
	if c.noTrunc {
		return c.ContainerID()
	}
	return c.Hostname()
}
func (c containerRow) Image() string { return imageOf(c.Task.Image, c.Args) }

// Command is the task's command line, quoted, cut as docker cuts it.
func (c containerRow) Command() string {
	cmd := c.command
	if cmd == "" { // a node that did not say
		cmd = strings.TrimSpace(c.Task.Image + " " + strings.Join(c.Args, " "))
	}
	if !c.noTrunc {
		cmd = ellipsis(cmd, commandWidth)
	}
	return strconv.Quote(cmd)
}

// CreatedAt is when the task was created, as Go prints a time (docker's
// "2006-01-02 15:04:05 -0700 MST"), to the second.
func (c containerRow) CreatedAt() string { return c.Task.CreatedAt.Truncate(time.Second).String() }

// RunningFor is the CREATED column: "3 hours ago".
func (c containerRow) RunningFor() string { return humanDuration(c.now.Sub(c.Task.CreatedAt)) + " ago" }

// Ports are the host-mode ports the task publishes while it runs:
// "0.0.0.0:8080->80/tcp".
func (c containerRow) Ports() string { return c.ports }
func (c containerRow) State() string { return api.ContainerStatus(c.Task.Status.State) }

// Status is docker's: "Up 3 hours", "Exited (3) 2 minutes ago" (no
// status when the node stopped the task), "Created". A foreground run's
// container shows its command's status, as inspect does.
func (c containerRow) Status() string {
	s := c.Task.Status
	since := func() string {
		if s.Timestamp.IsZero() {
			return ""
		}
		return " " + humanDuration(c.now.Sub(s.Timestamp))
	}
	switch api.ContainerStatus(s.State) {
	case "running":
		return "Up" + since()
	case "exited":
		out := "Exited"
		if code, ok := api.ContainerExitCode(c.Task); ok {
			out += fmt.Sprintf(" (%d)", code)
		}
		if ago := since(); ago != "" {
			out += ago + " ago"
		}
		return out
	}
	return "Created"
}
func (c containerRow) Size() string   { return "" }
func (c containerRow) Names() string  { return api.ContainerName(c.Task) }
func (c containerRow) Labels() string { return "" }
func (c containerRow) Mounts() string { return "" }

// Networks are the names of the task's networks.
func (c containerRow) Networks() string {
	var names []string
	for _, n := range c.Task.Networks {
		names = append(names, n.NetworkName)
	}
	return strings.Join(names, ",")
}

func (c containerRow) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"ID": c.ID(), "Image": c.Image(), "Command": c.Command(), "CreatedAt": c.CreatedAt(), "RunningFor": c.RunningFor(),
		"Ports": c.Ports(), "State": c.State(), "Status": c.Status(), "Size": c.Size(), "Names": c.Names(),
		"Labels": c.Labels(), "Mounts": c.Mounts(), "Networks": c.Networks(),
	})
}

// networkRow is a network for network ls --format.
type networkRow struct {
	api.NetworkResource
	noTrunc bool
}

var networkFields = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6", "Internal": "INTERNAL",
	"CreatedAt": "CREATED AT", "Labels": "LABELS", "Subnet": "SUBNET", "VNI": "VNI",
}

func (n networkRow) ID() string {
	if n.noTrunc {
		return n.NetworkResource.ID
	}
	return shortID(n.NetworkResource.ID)
}

func (n networkRow) IPv6() string { return strconv.FormatBool(n.EnableIPv6) }

// Internal is "true" or "false", as docker prints it.
func (n networkRow) Internal() string  { return strconv.FormatBool(n.NetworkResource.Internal) }
func (n networkRow) CreatedAt() string { return n.Created.String() }
func (n networkRow) Labels() string    { return "" }

func (n networkRow) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"ID": n.ID(), "Name": n.Name, "Driver": n.Driver, "Scope": n.Scope, "IPv6": n.IPv6(), "Internal": n.Internal(),
		"CreatedAt": n.CreatedAt(), "Labels": n.Labels(),
	})
}

// nodeRow is a node for node ls --format; its fields are docker's already
// but for EngineVersion.
type nodeRow struct {
	api.Node
}

var nodeFields = map[string]string{
	"ID": "ID", "Hostname": "HOSTNAME", "Status": "STATUS", "Availability": "AVAILABILITY",
	"ManagerStatus": "MANAGER STATUS", "EngineVersion": "ENGINE VERSION", "Addr": "ADDR", "DataPlane": "DATAPLANE",
}

func (n nodeRow) EngineVersion() string { return n.Version }

func (n nodeRow) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"ID": n.ID, "Self": n.Self, "Hostname": n.Hostname, "Status": n.Status, "Availability": n.Availability,
		"ManagerStatus": n.ManagerStatus, "EngineVersion": n.EngineVersion(),
	})
}

// lbFields are lb ls's, meshd's own list.
var lbFields = map[string]string{
	"Sandbox": "SANDBOX", "Network": "NETWORK", "DataPlane": "DATA PLANE", "Table": "TABLE", "Error": "ERROR",
	"FlowOffload": "FLOW OFFLOAD",
}

// ellipsis cuts s to width characters, the last one "…", as docker does.
func ellipsis(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}
