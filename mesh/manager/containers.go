package manager

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
)

// Standalone containers on attachable overlays. meshctl run on a node,
// with --net naming a swarm overlay made --attachable, makes a task of no
// service (ServiceID empty, Standalone set) on that node: its addresses
// are allocated here like a service task's, its node's agent builds it a
// task's sandbox, and its name and aliases are gossiped like a task's. It
// is never scheduled, moved, restarted or rolled: it lives on its node
// until that node stops, starts or removes it (or the node is removed);
// network connect and disconnect change its networks in place.
// Every method acts on the standalone tasks of one node only, the one
// that asks.

// maxNodeContainers bounds what one node's certificate can grow the
// replicated state by. A run's own sizes are api.ContainerCreate's
// (CheckSizes), and the record's too (records.CheckSize).
const maxNodeContainers = 1000

// notAttachable is Docker's refusal of a swarm network not made
// --attachable, word for word.
func notAttachable(name string) error {
	return api.Errorf(http.StatusForbidden, "Could not attach to network %s: rpc error: code = PermissionDenied desc = network %s not manually attachable", name, name)
}

// checkContainer checks what a run request says before the state is
// read: sizes, name, image, environment.
func checkContainer(req api.ContainerCreate) (images.Image, error) {
	if err := req.CheckSizes(); err != nil {
		return images.Image{}, err
	}
	if err := api.CheckContainerName(req.Name); err != nil {
		return images.Image{}, err
	}
	switch {
	case len(req.Networks) == 0:
		return images.Image{}, api.Invalid("a container of the cluster needs a swarm network")
	case req.PublishAll:
		// The node expands -P into -p's before it asks (AllocatePorts).
		return images.Image{}, api.Invalid("-P is expanded by the container's node: send its ports")
	}
	if err := checkImage(req.Image, req.Cmd); err != nil {
		return images.Image{}, err
	}
	img, err := images.Lookup(req.Image)
	if err != nil {
		return images.Image{}, api.NotFound("%v", err)
	}
	return img, nil
}

// RunContainer makes a standalone container on nodeID, attached to the
// attachable overlays req names, in order. Its node runs it once it sees
// the task.
func (m *Manager) RunContainer(_ context.Context, nodeID string, req api.ContainerCreate) (api.Task, error) {
	_, err := checkContainer(req)
	if err != nil {
		return api.Task{}, err
	}
	now := time.Now().UTC()
	sa, err := task.StandaloneOf(req, req.Name)
	if err != nil {
		return api.Task{}, err
	}
	sa.Ports = slices.Clone(req.Publish)
	t := api.Task{ID: api.NewID(), NodeID: nodeID, Image: req.Image, Args: slices.Clone(req.Cmd), Env: slices.Clone(req.Env),
		DesiredState: api.TaskRunning, CreatedAt: now, Standalone: sa}
	err = m.update(func(s *State) error {
		if _, ok := s.Nodes[nodeID]; !ok {
			return api.NotFound("node %s is not part of the swarm", api.Clip(nodeID))
		}
		if err := checkContainerPorts(s, nodeID, sa.Ports); err != nil {
			return err
		}
		mine := nodeContainers(s, nodeID)
		if len(mine) >= maxNodeContainers {
			return api.Conflict("node %s has %d containers on swarm networks, the most it may have: remove some first", s.Nodes[nodeID].Hostname, len(mine))
		}
		for _, o := range mine {
			if o.Standalone.Name == req.Name {
				return api.Conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`,
					req.Name, o.ContainerID())
			}
		}
		for _, a := range req.Networks {
			tn, err := attachContainer(s, t, a)
			if err != nil {
				return err
			}
			t.Networks = append(t.Networks, tn)
		}
		s.Tasks[t.ID] = t
		if err := records.CheckSize("task", req.Name, t); err != nil {
			return err
		}
		return ensureLBAddrs(s)
	})
	if err != nil {
		return api.Task{}, err
	}
	return t, nil
}

// attachContainer gives a container an address on one attachable
// overlay: the one --ip asks for, or the next free one. A network the
// container is on already is refused first, with Docker's words: a
// swarm task's container (managed) gets libnetwork's endpoint conflict.
// The ingress network is not attachable, as Docker's.
func attachContainer(s *State, t api.Task, a api.ContainerAttach) (api.TaskNetwork, error) {
	id, err := s.NetworkID(a.Network)
	if err != nil {
		return api.TaskNetwork{}, err
	}
	n := s.Networks[id]
	switch {
	case slices.ContainsFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == id }) && t.Standalone == nil:
		return api.TaskNetwork{}, api.Errorf(http.StatusForbidden, "endpoint with name %s already exists in network %s", api.ContainerName(t), n.Name)
	case slices.ContainsFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == id }):
		return api.TaskNetwork{}, api.Conflict("container %s is already attached to network %s", api.ContainerName(t), n.Name)
	case n.Ingress || !n.Attachable:
		return api.TaskNetwork{}, notAttachable(n.Name)
	}
	if err := checkAliases(a.Aliases); err != nil {
		return api.TaskNetwork{}, api.Invalid("network %s: %v", n.Name, err)
	}
	subnet := netip.MustParsePrefix(n.Subnet)
	var want netip.Addr
	if a.IP != "" {
		if want, err = netip.ParseAddr(a.IP); err != nil || !want.Is4() {
			return api.TaskNetwork{}, api.Invalid("invalid IPv4 address: %s", api.Clip(a.IP))
		}
		if !subnet.Contains(want) {
			return api.TaskNetwork{}, api.Invalid("Invalid address %s: It does not belong to any of this network's subnets", want)
		}
	}
	ip, err := s.IPAM.Allocate(id, want)
	if err != nil {
		if want.IsValid() {
			return api.TaskNetwork{}, api.Conflict("Address already in use: %s on %s", want, n.Name)
		}
		return api.TaskNetwork{}, api.Conflict("network %s: no address for %s: %v", n.Name, api.ContainerName(t), err)
	}
	return api.TaskNetwork{NetworkID: id, NetworkName: n.Name, Addr: netip.PrefixFrom(ip, subnet.Bits()).String(),
		MAC: ipam.MAC(ip).String(), Aliases: slices.Clone(a.Aliases)}, nil
}

// newAttachment is the attachment task of one of a node's engine
// containers, on no network yet: network connect of a bridge container
// to an attachable overlay makes it, its last disconnect removes it.
// Its name is the container's, which no other container of the node's
// may take meanwhile, as Docker's names are unique on a node.
func newAttachment(s *State, nodeID string, c api.LocalContainer) (api.Task, error) {
	if _, ok := s.Nodes[nodeID]; !ok {
		return api.Task{}, api.NotFound("node %s is not part of the swarm", api.Clip(nodeID))
	}
	if len(c.ID) != 64 || strings.Trim(c.ID, "0123456789abcdef") != "" || c.Name == "" {
		return api.Task{}, api.Invalid("container %s (%s): want a 64-hex ID and a name", api.Clip(c.Name), api.Clip(c.ID))
	}
	mine := nodeContainers(s, nodeID)
	if len(mine) >= maxNodeContainers {
		return api.Task{}, api.Conflict("node %s has %d containers on swarm networks, the most it may have: remove some first", s.Nodes[nodeID].Hostname, len(mine))
	}
	for _, o := range mine {
		if o.Standalone.Name == c.Name {
			return api.Task{}, api.Conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`,
				c.Name, o.ContainerID())
		}
	}
	return api.Task{ID: api.NewID(), NodeID: nodeID, DesiredState: api.TaskRunning, CreatedAt: time.Now().UTC(),
		Standalone: &api.Standalone{Name: c.Name, ContainerID: c.ID, Attachment: true}}, nil
}

// nodeContainers are the standalone tasks of a node, stopped ones
// included, in ID order.
func nodeContainers(s *State, nodeID string) []api.Task {
	var out []api.Task
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		if t := s.Tasks[id]; t.Standalone != nil && t.NodeID == nodeID {
			out = append(out, t)
		}
	}
	return out
}

// nodeContainer finds one of a node's standalone containers as docker
// does: ID, name, unique prefix.
func nodeContainer(s *State, nodeID, ref string) (api.Task, error) {
	t, err := api.MatchContainer(nodeContainers(s, nodeID), ref)
	if err != nil {
		return api.Task{}, api.NotFound("No such container: %s", api.Clip(ref))
	}
	return t, nil
}

// nodeConnectable finds what network connect and disconnect change on a
// node, as docker does on a swarm node: one of its standalone containers,
// or the container of a service's task running there.
func nodeConnectable(s *State, nodeID, ref string) (api.Task, error) {
	tasks := nodeContainers(s, nodeID)
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		if t := s.Tasks[id]; t.Standalone == nil && t.NodeID == nodeID && t.Current() {
			tasks = append(tasks, t)
		}
	}
	t, err := api.MatchContainer(tasks, ref)
	if err != nil {
		return api.Task{}, api.NotFound("No such container: %s", api.Clip(ref))
	}
	return t, nil
}

// StopContainer stops one of nodeID's containers: its node stops the
// process once it sees the task shut down. It keeps its addresses, for a
// start. exitCode is a foreground run's command's status.
func (m *Manager) StopContainer(_ context.Context, nodeID, ref string, exitCode *int) error {
	report := records.TaskStatuses(m.cfg.DB)
	return m.update(func(s *State) error {
		t, err := nodeContainer(s, nodeID, ref)
		if err != nil {
			return err
		}
		if exitCode != nil {
			code := *exitCode
			sa := *t.Standalone
			sa.ExitCode = &code
			t.Standalone = &sa
			s.Tasks[t.ID] = t
		}
		if !t.Current() {
			return nil
		}
		st, ok := report[t.ID]
		switch {
		case ok && api.Terminal(st.State):
		case exitCode != nil && *exitCode == 0:
			st = api.TaskStatus{State: api.TaskComplete, Message: "stopped"}
		case exitCode != nil:
			// What mesh/task reports of a process that exited so, which
			// ps and inspect read the status from (api.ExitCode).
			st = api.TaskStatus{State: api.TaskFailed, Message: "stopped", Err: fmt.Sprintf("task: non-zero exit (%d)", *exitCode)}
		default:
			st = api.TaskStatus{State: api.TaskShutdown, Message: "stopped"}
		}
		stopContainer(s, t.ID, st, time.Now().UTC())
		return nil
	})
}

// stopContainer makes a standalone task desired shutdown, with its last
// report and end kept and its addresses too (a start uses them again).
func stopContainer(s *State, id string, st api.TaskStatus, now time.Time) {
	t := s.Tasks[id]
	st.Err = api.Cut(st.Err, maxStatusErr)
	st.Message = api.Cut(st.Message, maxStatusErr)
	st.PID, st.Sandbox = 0, ""
	if st.Timestamp.IsZero() {
		st.Timestamp = now
	}
	t.DesiredState, t.Status, t.EndedAt = api.TaskShutdown, st, now
	s.Tasks[id] = t
}

// StartContainer starts a stopped container of nodeID again on the
// addresses it kept. It is a new task (its node may still be removing the
// old one's sandbox), which replaces the stopped one.
func (m *Manager) StartContainer(_ context.Context, nodeID, ref string) (api.Task, error) {
	var out api.Task
	err := m.update(func(s *State) error {
		t, err := nodeContainer(s, nodeID, ref)
		if err != nil {
			return err
		}
		if t.Current() {
			out = t
			return nil
		}
		sa := *t.Standalone
		sa.ExitCode, sa.ContainerID = nil, t.ContainerID()
		next := t
		next.ID, next.Standalone, next.DesiredState = api.NewID(), &sa, api.TaskRunning
		next.EndedAt, next.Status = time.Time{}, api.TaskStatus{} // created when run made it, as docker's
		delete(s.Tasks, t.ID)
		s.Tasks[next.ID] = next
		out = next
		return nil
	})
	return out, err
}

// RemoveContainer removes one of nodeID's containers and gives back its
// addresses; a running one only with force (its node stops it).
func (m *Manager) RemoveContainer(_ context.Context, nodeID, ref string, force bool) error {
	// A process its node reports ended is not running, even before the
	// leader's sync stops its task.
	report := records.TaskStatuses(m.cfg.DB)
	return m.update(func(s *State) error {
		t, err := nodeContainer(s, nodeID, ref)
		if err != nil {
			return err
		}
		if t.Current() && !api.Terminal(report[t.ID].State) && !force {
			return api.Conflict("You cannot remove a running container %s. Stop the container before attempting removal or force remove", t.ContainerID())
		}
		if err := removeTask(s, t.ID); err != nil {
			return err
		}
		return ensureLBAddrs(s)
	})
}

// ConnectContainer attaches one of nodeID's containers, or a service's
// task running there, to one more attachable overlay, in place: same
// task, one more network, its address allocated here. Its node attaches
// the running container live (a new ethN) and names it on that network; a
// stopped one gets it at its start. A service task's new network is
// marked Connected: its service neither counts it as the task's spec nor
// names the service there.
func (m *Manager) ConnectContainer(_ context.Context, nodeID, ref string, a api.ContainerAttach) (api.Task, error) {
	if err := (api.NetworkConnect{Attach: a}).CheckSizes(); err != nil {
		return api.Task{}, err
	}
	var out api.Task
	err := m.update(func(s *State) error {
		t, err := nodeConnectable(s, nodeID, ref)
		if err != nil && a.Local != nil && a.Local.ID == ref {
			t, err = newAttachment(s, nodeID, *a.Local)
		}
		if err != nil {
			return err
		}
		if len(t.Networks) >= api.MaxNetworks {
			return api.Invalid("container %s is on %d networks, the most it may be on", api.ContainerName(t), len(t.Networks))
		}
		tn, err := attachContainer(s, t, a)
		if err != nil {
			return err
		}
		tn.Connected = t.Standalone == nil
		t.Networks = append(slices.Clone(t.Networks), tn)
		s.Tasks[t.ID] = t
		if err := records.CheckSize("task", api.ContainerName(t), t); err != nil {
			return err
		}
		out = t
		return ensureLBAddrs(s)
	})
	if err != nil {
		return api.Task{}, err
	}
	return out, nil
}

// DisconnectContainer detaches one of nodeID's containers, or a service's
// task running there, from one of its networks, in place, and gives back
// its address there; its node detaches the running container live. A
// standalone container may leave its last network, as Docker's: it keeps
// its loopback only, and stays its node's until removed. A service task
// leaves only the networks network connect gave it: the others are its
// service's.
func (m *Manager) DisconnectContainer(_ context.Context, nodeID, ref, network string) (api.Task, error) {
	if len(network) > api.MaxRefLen {
		return api.Task{}, api.Invalid("network reference too long: %d bytes, at most %d", len(network), api.MaxRefLen)
	}
	var out api.Task
	err := m.update(func(s *State) error {
		t, err := nodeConnectable(s, nodeID, ref)
		if err != nil {
			return err
		}
		// The task's own view first: a network is not removed while a
		// container is on it, but its name is matched as the task keeps it.
		i := slices.IndexFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == network || tn.NetworkName == network })
		if i < 0 {
			id, err := s.NetworkID(network)
			if err != nil {
				return err
			}
			if i = slices.IndexFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == id }); i < 0 {
				return api.Invalid("container %s is not connected to network %s", t.ContainerID(), s.Networks[id].Name)
			}
		}
		switch tn := t.Networks[i]; {
		case t.Standalone == nil && !tn.Connected:
			return api.Conflict("container %s is a task of service %s, whose network %s is: use meshctl service update --network-rm %s %s",
				api.ContainerName(t), t.ServiceName, tn.NetworkName, tn.NetworkName, t.ServiceName)
		}
		if err := release(s, t.Networks[i].NetworkID, t.Networks[i].Addr); err != nil {
			return err
		}
		t.Networks = slices.Delete(slices.Clone(t.Networks), i, i+1)
		out = t
		s.Tasks[t.ID] = t
		if t.IsAttachment() && len(t.Networks) == 0 {
			// Off its last overlay, the engine's container is no concern
			// of the cluster's any more.
			if err := removeTask(s, t.ID); err != nil {
				return err
			}
			return ensureLBAddrs(s)
		}
		return ensureLBAddrs(s)
	})
	if err != nil {
		return api.Task{}, err
	}
	return out, nil
}

// reapContainer is reapTasks for a standalone task whose process ended:
// it is stopped, as docker's container is when its process exits, or
// removed with run's --rm.
func reapContainer(s *State, id string, st api.TaskStatus, now time.Time) error {
	// An attachment's container was removed on its node: nothing holds
	// its addresses any more.
	if s.Tasks[id].Standalone.AutoRemove || s.Tasks[id].IsAttachment() {
		return removeTask(s, id)
	}
	stopContainer(s, id, st, now)
	return nil
}

// removeNodeContainers removes the standalone tasks of a node that left
// the cluster: nothing else would ever stop or remove them.
func removeNodeContainers(s *State, nodeID string) error {
	for _, t := range nodeContainers(s, nodeID) {
		if err := removeTask(s, t.ID); err != nil {
			return err
		}
	}
	return nil
}

// containerUsers names the standalone containers on a network, for a
// network rm that must wait for them.
func containerUsers(s *State, netID string) []string {
	var out []string
	for _, t := range s.Tasks {
		if t.Standalone != nil && slices.ContainsFunc(t.Networks, func(tn api.TaskNetwork) bool { return tn.NetworkID == netID }) {
			out = append(out, t.Standalone.Name)
		}
	}
	slices.Sort(out)
	return out
}

// containerNetworkInUse is Docker's refusal of a network rm while
// containers are attached.
func containerNetworkInUse(n api.Network, users []string) error {
	return api.Conflict("error while removing network: network %s id %s has active endpoints (%s)", n.Name, n.ID, strings.Join(users, ", "))
}
