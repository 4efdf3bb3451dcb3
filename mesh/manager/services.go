package manager

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/records"
)

// createService checks the request, allocates and schedules the tasks.
// Nothing is kept when any step fails.
func (m *Manager) CreateService(_ context.Context, req api.ServiceCreate) (api.Service, error) {
	if err := req.CheckSizes(); err != nil {
		return api.Service{}, err
	}
	if err := checkName("service", req.Name); err != nil {
		return api.Service{}, err
	}
	if err := checkImage(req.Image, req.Args); err != nil {
		return api.Service{}, err
	}
	svcMode, replicas, err := serviceMode(req)
	if err != nil {
		return api.Service{}, err
	}
	if _, err := parseConstraints(req.Constraints); err != nil {
		return api.Service{}, err
	}
	mode := req.EndpointMode
	if mode == "" {
		mode = api.EndpointModeVIP
	}
	if mode != api.EndpointModeVIP && mode != api.EndpointModeDNSRR {
		return api.Service{}, api.Invalid("invalid endpoint mode %s: want vip or dnsrr", api.Quote(mode))
	}
	ports, err := checkPorts(req.Ports, mode)
	if err != nil {
		return api.Service{}, err
	}
	policy, err := restartPolicy(req.RestartPolicy)
	if err != nil {
		return api.Service{}, err
	}
	if err := api.CheckEnv(req.Env); err != nil {
		return api.Service{}, err
	}
	upd, err := updateConfig(req.UpdateConfig, "update")
	if err != nil {
		return api.Service{}, err
	}
	rb, err := updateConfig(req.RollbackConfig, "rollback")
	if err != nil {
		return api.Service{}, err
	}
	id := api.NewID()
	var created api.Service
	err = m.update(func(s *State) error {
		for _, svc := range s.Services {
			if svc.Name == req.Name {
				return api.Conflict("service %s already exists", req.Name)
			}
		}
		atts, err := attachments(s, req.Networks)
		if err != nil {
			return err
		}
		if err := checkPublishable(s, "", ports); err != nil {
			return err
		}
		now := time.Now().UTC()
		svc := api.Service{ID: id, Name: req.Name, Image: req.Image, Args: req.Args, Env: req.Env, Mode: svcMode, Replicas: replicas,
			Constraints: req.Constraints, Networks: atts, Endpoint: api.Endpoint{Mode: mode, Ports: ports}, RestartPolicy: policy,
			UpdateConfig: upd, RollbackConfig: rb, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := syncVIPs(s, &svc); err != nil {
			return err
		}
		s.Services[id] = svc
		if err := reconcileSlots(s, id, now); err != nil {
			return err
		}
		created = s.Services[id]
		return checkServiceSizes(s, id)
	})
	return created, err
}

// serviceMode is a create request's mode and replica count: replicated
// (the default, Docker's) with 1 replica unless told, or global, which
// takes no count (Docker's error).
func serviceMode(req api.ServiceCreate) (string, int, error) {
	switch req.Mode {
	case "", api.ModeReplicated:
		replicas := 1
		if req.Replicas != nil {
			replicas = *req.Replicas
		}
		if replicas < 0 || replicas > 1000 {
			return "", 0, api.Invalid("invalid replicas %d: want 0 to 1000", replicas)
		}
		return api.ModeReplicated, replicas, nil
	case api.ModeGlobal:
		if req.Replicas != nil {
			return "", 0, api.Invalid("replicas can only be used with replicated mode")
		}
		return api.ModeGlobal, 0, nil
	}
	return "", 0, api.Invalid("invalid mode %s: want replicated or global", api.Quote(req.Mode))
}

// checkServiceSizes is the last check of a write that made or changed a
// service: its record and its tasks' must fit a table entry, or they
// could never be published.
func checkServiceSizes(s *State, id string) error {
	svc := s.Services[id]
	if err := records.CheckSize("service", svc.Name, svc); err != nil {
		return err
	}
	for _, t := range s.Tasks {
		if t.ServiceID != id {
			continue
		}
		if err := records.CheckSize("task", t.Name(), t); err != nil {
			return err
		}
	}
	return nil
}

// checkImage accepts a built-in image, or any host command given after --.
func checkImage(image string, args []string) error {
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return api.Invalid("invalid argument %s: a NUL byte cannot be passed to a command", api.Quote(a))
		}
	}
	if image == "" && len(args) > 0 {
		return nil
	}
	if _, err := images.Lookup(image); err != nil {
		return api.Invalid("%v", err)
	}
	return nil
}

// attachments resolves the networks of a create request, in order.
func attachments(s *State, reqs []api.NetworkAttachment) ([]api.NetworkAttachment, error) {
	var out []api.NetworkAttachment
	seen := map[string]bool{}
	for _, a := range reqs {
		id, err := s.NetworkID(a.Target)
		if err != nil {
			return nil, err
		}
		if s.Networks[id].Ingress {
			return nil, api.Invalid("network %s is the routing mesh's own; publish a port instead", api.Clip(a.Target))
		}
		if seen[id] {
			return nil, api.Invalid("network %s given twice", api.Clip(a.Target))
		}
		if err := checkAliases(a.Aliases); err != nil {
			return nil, api.Invalid("network %s: %v", api.Clip(a.Target), err)
		}
		seen[id] = true
		out = append(out, api.NetworkAttachment{Target: id, Aliases: a.Aliases})
	}
	return out, nil
}

// scaleService changes the number of replicas.
func (m *Manager) ScaleService(_ context.Context, ref string, replicas int) (api.Service, error) {
	if replicas < 0 || replicas > 1000 {
		return api.Service{}, api.Invalid("invalid replicas %d: want 0 to 1000", replicas)
	}
	var out api.Service
	err := m.update(func(s *State) error {
		id, err := s.ServiceID(ref)
		if err != nil {
			return err
		}
		svc := s.Services[id]
		if svc.Mode == api.ModeGlobal {
			// Docker's line, which names the service as it was given.
			return api.Invalid("%s: scale can only be used with replicated mode", api.Clip(ref))
		}
		if svc.Replicas != replicas {
			svc.Replicas, svc.Version, svc.UpdatedAt = replicas, svc.Version+1, time.Now().UTC()
			s.Services[id] = svc
		}
		if err := reconcileSlots(s, id, time.Now().UTC()); err != nil {
			return err
		}
		out = s.Services[id]
		return checkServiceSizes(s, id)
	})
	return out, err
}

// removeService deletes a service and its tasks, history included,
// releasing their addresses.
func (m *Manager) RemoveService(_ context.Context, ref string) error {
	return m.update(func(s *State) error {
		id, err := s.ServiceID(ref)
		if err != nil {
			return err
		}
		for tid, t := range s.Tasks {
			if t.ServiceID == id {
				if err := removeTask(s, tid); err != nil {
					return err
				}
			}
		}
		if err := releaseVIPs(s, s.Services[id]); err != nil {
			return err
		}
		delete(s.Services, id)
		delete(s.Rollouts, id)
		return ensureLBAddrs(s)
	})
}

// reconcileSlots makes a service's tasks match its replica count: missing
// slots get a task on the node the spread scheduler picks, extra slots
// (the highest first, as Swarm does) are removed with their history. A
// slot no node can take fails the write: the request asked for it. With
// constraints it stays pending instead, as Swarm's: a node may satisfy
// them later (a label added, a node joining).
func reconcileSlots(s *State, svcID string, now time.Time) error {
	return placeSlots(s, svcID, now, len(s.Services[svcID].Constraints) > 0)
}

// placeSlots is reconcileSlots; with pending set, slots no node can take
// stay without a task (Swarm's pending tasks) instead of failing the
// write, for placements nobody asked for in this write: [fillPending]
// places them once a node can take them. A slot whose last task exited
// gets a new one only as the restart policy says (see [slotDue]).
func placeSlots(s *State, svcID string, now time.Time, pending bool) error {
	svc := s.Services[svcID]
	if svc.Mode == api.ModeGlobal {
		return placeGlobal(s, svcID, now)
	}
	current := map[int]bool{}
	for id, t := range s.Tasks {
		if t.ServiceID != svcID {
			continue
		}
		if t.Slot > svc.Replicas {
			if err := removeTask(s, id); err != nil {
				return err
			}
			continue
		}
		current[t.Slot] = current[t.Slot] || t.Current()
	}
	for slot := 1; slot <= svc.Replicas; slot++ {
		if current[slot] {
			continue
		}
		due, restarts := slotDue(s, svc, slot, "", now)
		if !due {
			continue
		}
		node, err := pickNode(s, svcID)
		if err != nil {
			if pending {
				break // no node can take any slot: they all wait
			}
			return err
		}
		if _, err := addTask(s, svc, slot, node, restarts, now); err != nil {
			return err
		}
		if err := pruneHistory(s, svcID, slot, ""); err != nil {
			return err
		}
	}
	return ensureLBAddrs(s)
}

// fillPending places the slots that have no current task: left pending
// when no node could take them, or whose task exited and is due a
// restart.
func fillPending(s *State, now time.Time) error {
	running := map[string]int{}
	for _, t := range s.Tasks {
		if t.Current() {
			running[t.ServiceID]++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Services)) {
		// A global service is placed every time: nodes that became
		// eligible change its count.
		if svc := s.Services[id]; running[id] < svc.Replicas || svc.Mode == api.ModeGlobal {
			if err := placeSlots(s, id, now, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// addTask creates a task with an address on each of its networks.
// restarts counts the slot's restarts before it.
func addTask(s *State, svc api.Service, slot int, node string, restarts int, now time.Time) (string, error) {
	id := api.NewID()
	t := api.Task{ID: id, ServiceID: svc.ID, ServiceName: svc.Name, Slot: slot, NodeID: node,
		Image: svc.Image, Args: svc.Args, Env: svc.Env, ForceUpdate: svc.ForceUpdate, DesiredState: api.TaskRunning,
		CreatedAt: now, Restarts: restarts}
	for _, netID := range taskNetworks(s, svc) {
		n := s.Networks[netID]
		addr, err := allocate(s, netID)
		if err != nil {
			return "", api.Conflict("network %s: no address for %s: %v", n.Name, t.Name(), err)
		}
		t.Networks = append(t.Networks, api.TaskNetwork{NetworkID: n.ID, NetworkName: n.Name,
			Addr: addr, MAC: ipam.MAC(netip.MustParsePrefix(addr).Addr()).String()})
	}
	s.Tasks[id] = t
	return id, nil
}

// removeTask forgets a task, current or history, releasing its addresses.
func removeTask(s *State, id string) error {
	t := s.Tasks[id]
	for _, tn := range t.Networks {
		if err := release(s, tn.NetworkID, tn.Addr); err != nil {
			return err
		}
	}
	delete(s.Tasks, id)
	return nil
}

// pickNode is the spread scheduler: among Ready, Active nodes that
// satisfy the service's constraints, the one with the fewest tasks of
// this service, then the fewest tasks, then by hostname for a stable
// choice.
func pickNode(s *State, svcID string) (string, error) {
	type load struct{ svc, all int }
	loads := map[string]*load{}
	ready := 0
	for id, n := range s.Nodes {
		if !schedulable(n) {
			continue
		}
		ready++
		if fits(s.Services[svcID], n) {
			loads[id] = &load{}
		}
	}
	for _, t := range s.Tasks {
		if l, ok := loads[t.NodeID]; ok && t.Current() {
			l.all++
			if t.ServiceID == svcID {
				l.svc++
			}
		}
	}
	var ids []string
	for id := range loads {
		ids = append(ids, id)
	}
	if len(ids) == 0 && ready > 0 {
		// Swarm's words for a task left pending by its constraints.
		return "", api.Conflict("no suitable node (scheduling constraints not satisfied on %d nodes)", ready)
	}
	if len(ids) == 0 {
		return "", api.Conflict("no node is ready and active to run tasks")
	}
	slices.SortFunc(ids, func(a, b string) int {
		la, lb := loads[a], loads[b]
		if la.svc != lb.svc {
			return la.svc - lb.svc
		}
		if la.all != lb.all {
			return la.all - lb.all
		}
		return strings.Compare(s.Nodes[a].Hostname, s.Nodes[b].Hostname)
	})
	return ids[0], nil
}

// rescheduleDown moves the tasks of nodes Down for longer than after (or
// gone from the records) to the nodes the scheduler picks now. A node that
// comes back finds its tasks gone from the table and stops them.
func rescheduleDown(s *State, now time.Time, after time.Duration) error {
	return moveTasks(s, now, func(_ api.Task, n api.Node, ok bool) bool {
		return !ok || (n.Status == api.StatusDown && now.Sub(n.UpdatedAt) >= after)
	})
}

// rescheduleDrained moves the tasks of drained nodes elsewhere, as Swarm
// does; a paused node keeps its tasks and only gets no new ones. The
// drained node's agent sees its tasks leave the table and takes them out
// of the load balancer (weight 0) before stopping them.
func rescheduleDrained(s *State, now time.Time) error {
	return moveTasks(s, now, func(_ api.Task, n api.Node, ok bool) bool {
		return ok && n.Availability == api.AvailabilityDrain
	})
}

// moveTasks is the one home of moving tasks off nodes: it shuts down
// every current task that leave says must give its node up (ok is false
// for a node no longer recorded), keeping it as its slot's history, and
// places the slots again with new tasks on the nodes the scheduler picks;
// the tasks left in place keep their IDs and addresses. A slot no node can take now stays pending rather than
// failing the write, which also carries the change that made the tasks
// move.
func moveTasks(s *State, now time.Time, leave func(t api.Task, n api.Node, ok bool) bool) error {
	moved := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		t := s.Tasks[id]
		n, ok := s.Nodes[t.NodeID]
		if t.Standalone != nil {
			// A container stays on its node: it goes only with it.
			if !ok {
				if err := removeTask(s, id); err != nil {
					return err
				}
			}
			continue
		}
		if !t.Current() || !leave(t, n, ok) {
			continue
		}
		st := api.TaskStatus{State: api.TaskShutdown, Message: "moved off its node", Timestamp: now}
		if err := shutdownTask(s, id, st, now); err != nil {
			return err
		}
		moved[t.ServiceID] = true
	}
	for _, svcID := range slices.Sorted(maps.Keys(moved)) {
		if err := placeSlots(s, svcID, now, true); err != nil {
			return err
		}
	}
	return nil
}
