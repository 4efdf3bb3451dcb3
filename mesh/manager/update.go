package manager

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// Service updates and rollbacks, as Swarm's. An update changes the spec
// at once (the previous one is kept for a rollback) and, when the tasks'
// spec changed (image, arguments, environment, networks, --force), the
// leader replaces them a batch at a time at each sync ([advanceUpdates]):
// a batch's new tasks must run and be programmed by every node that
// sends to them before the old tasks of the next batch are shut down, so
// that a published port keeps answering. An old task shut down drains
// first (its node gives it weight 0 everywhere before stopping it) and
// stays as its slot's history. The progress is in the replicated state
// (the service's UpdateStatus, the batch under way in [State.Rollouts]),
// so a new leader continues an update where the old one left it.

// Rollout is the leader's bookkeeping of a service's update or rollback
// under way.
type Rollout struct {
	// Batch are the new tasks of the batch under way: the next batch
	// starts once all of them run and are reachable.
	Batch []string `json:"Batch,omitempty"`
	// NextBatchAt is when the update delay after the last batch ends.
	NextBatchAt time.Time `json:"NextBatchAt,omitzero"`
	// Watched are the new tasks of the batches done, each until its
	// monitor period ends: one that fails or ends before is the update's
	// failure, as one of the batch under way is (Docker's --update-monitor:
	// a task that runs for a moment and exits is caught).
	Watched map[string]time.Time `json:"Watched,omitempty"`
}

// Update messages, as Docker's UpdateStatus.Message.
const (
	msgUpdating          = "update in progress"
	msgUpdateCompleted   = "update completed"
	msgRollbackRequested = "manually requested rollback"
	msgRollbackCompleted = "rollback completed"
)

// UpdateService applies a service update; u.Force replaces the tasks even
// when their spec did not change. Everything is checked before anything
// is kept.
func (m *Manager) UpdateService(_ context.Context, ref string, u api.ServiceUpdate) (api.Service, error) {
	if err := u.CheckSizes(); err != nil {
		return api.Service{}, err
	}
	var out api.Service
	err := m.update(func(s *State) error {
		var err error
		out, err = updateService(s, ref, u, time.Now().UTC())
		return err
	})
	return out, err
}

// RollbackService restores a service's previous spec, replacing its
// tasks as its rollback config says.
func (m *Manager) RollbackService(_ context.Context, ref string) (api.Service, error) {
	var out api.Service
	err := m.update(func(s *State) error {
		id, err := s.ServiceID(ref)
		if err != nil {
			return err
		}
		if err := rollbackService(s, id, msgRollbackRequested, time.Now().UTC()); err != nil {
			return err
		}
		out = s.Services[id]
		return checkServiceSizes(s, id)
	})
	return out, err
}

// updateService is [Manager.UpdateService] on the state.
func updateService(s *State, ref string, u api.ServiceUpdate, now time.Time) (api.Service, error) {
	id, err := s.ServiceID(ref)
	if err != nil {
		return api.Service{}, err
	}
	svc := s.Services[id]
	next, err := updatedSpec(s, svc, svc.Spec(), u)
	if err != nil {
		return api.Service{}, err
	}
	prev := svc.Spec()
	if err := setSpec(s, &svc, next); err != nil {
		return api.Service{}, err
	}
	// As Docker's: every update bumps the version and keeps the spec it
	// replaced, even one that changes nothing.
	svc.PreviousSpec, svc.Version, svc.UpdatedAt = &prev, svc.Version+1, now
	s.Services[id] = svc
	if err := startRollout(s, id, api.UpdateUpdating, msgUpdating, now); err != nil {
		return api.Service{}, err
	}
	return s.Services[id], checkServiceSizes(s, id)
}

// rollbackService swaps a service's spec and previous spec and rolls its
// tasks to it; msg says why (asked for, or an update's failure).
func rollbackService(s *State, id, msg string, now time.Time) error {
	svc := s.Services[id]
	if svc.PreviousSpec == nil {
		return api.Invalid("service %s does not have a previous spec", svc.Name)
	}
	cur, prev := svc.Spec(), *svc.PreviousSpec
	if err := checkPublishable(s, id, prev.Ports); err != nil {
		return err
	}
	for _, a := range prev.Networks {
		if _, ok := s.Networks[a.Target]; !ok {
			return api.Conflict("service %s cannot be rolled back: network %s was removed", svc.Name, a.Target)
		}
	}
	if err := setSpec(s, &svc, prev); err != nil {
		return err
	}
	svc.PreviousSpec, svc.Version, svc.UpdatedAt = &cur, svc.Version+1, now
	s.Services[id] = svc
	return startRollout(s, id, api.UpdateRollbackStarted, msg, now)
}

// startRollout places the slots a replica change asks for and, when some
// tasks run an older spec, starts replacing them (state and msg are the
// UpdateStatus's); otherwise the update has nothing to roll and its
// status says so at once.
func startRollout(s *State, id, state, msg string, now time.Time) error {
	if err := reconcileSlots(s, id, now); err != nil {
		return err
	}
	svc := s.Services[id]
	svc.UpdateStatus = &api.UpdateStatus{State: state, StartedAt: now, Message: msg}
	s.Services[id] = svc
	delete(s.Rollouts, id)
	if hasOutdated(s, svc) {
		s.Rollouts[id] = Rollout{}
		return nil
	}
	finishRollout(s, id, now)
	return nil
}

// finishRollout marks an update or rollback done.
func finishRollout(s *State, id string, now time.Time) {
	svc := s.Services[id]
	st := *svc.UpdateStatus
	st.CompletedAt = now
	if st.State == api.UpdateRollbackStarted {
		st.State, st.Message = api.UpdateRollbackCompleted, msgRollbackCompleted
	} else {
		st.State, st.Message = api.UpdateCompleted, msgUpdateCompleted
	}
	svc.UpdateStatus = &st
	s.Services[id] = svc
	delete(s.Rollouts, id)
}

// setSpec gives svc the spec sp, with a VIP on each network its tasks
// attach to then: the VIPs of the networks kept stay, those of the
// networks left are released.
func setSpec(s *State, svc *api.Service, sp api.ServiceSpec) error {
	svc.Image, svc.Args, svc.Env = sp.Image, sp.Args, sp.Env
	if svc.Mode != api.ModeGlobal {
		svc.Replicas = sp.Replicas
	}
	svc.Networks, svc.Endpoint.Ports, svc.RestartPolicy = sp.Networks, sp.Ports, sp.RestartPolicy
	svc.UpdateConfig, svc.RollbackConfig, svc.ForceUpdate = sp.UpdateConfig, sp.RollbackConfig, sp.ForceUpdate
	return syncVIPs(s, svc)
}

// updatedSpec is sp with the update's changes, each checked.
func updatedSpec(s *State, svc api.Service, sp api.ServiceSpec, u api.ServiceUpdate) (api.ServiceSpec, error) {
	if u.Image != nil {
		sp.Image = *u.Image
	}
	if u.Args != nil {
		sp.Args = *u.Args
	}
	if u.Image != nil || u.Args != nil {
		if err := checkImage(sp.Image, sp.Args); err != nil {
			return sp, err
		}
	}
	if u.Replicas != nil {
		if svc.Mode == api.ModeGlobal {
			return sp, api.Invalid("replicas can only be used with replicated mode") // Docker's words
		}
		if *u.Replicas < 0 || *u.Replicas > 1000 {
			return sp, api.Invalid("invalid replicas %d: want 0 to 1000", *u.Replicas)
		}
		sp.Replicas = *u.Replicas
	}
	env, err := updatedEnv(sp.Env, u.EnvAdd, u.EnvRm)
	if err != nil {
		return sp, err
	}
	sp.Env = env
	if sp.Ports, err = updatedPorts(s, svc, sp.Ports, u.PublishAdd, u.PublishRm); err != nil {
		return sp, err
	}
	if sp.Networks, err = updatedNetworks(s, svc, sp.Networks, u.NetworkAdd, u.NetworkRm); err != nil {
		return sp, err
	}
	if sp.UpdateConfig, err = updatedConfig(sp.UpdateConfig, u.Update, "update"); err != nil {
		return sp, err
	}
	if sp.RollbackConfig, err = updatedConfig(sp.RollbackConfig, u.Rollback, "rollback"); err != nil {
		return sp, err
	}
	if u.Force {
		sp.ForceUpdate++
	}
	return sp, nil
}

// updatedEnv removes the variables named in rm (KEY or KEY=VALUE), then
// sets those of add, replacing a variable of the same name in place, as
// docker service update --env-rm and --env-add do.
func updatedEnv(env, add, rm []string) ([]string, error) {
	key := func(e string) string { k, _, _ := strings.Cut(e, "="); return k }
	out := slices.DeleteFunc(slices.Clone(env), func(e string) bool {
		return slices.ContainsFunc(rm, func(r string) bool { return key(r) == key(e) })
	})
	for _, a := range add {
		if i := slices.IndexFunc(out, func(e string) bool { return key(e) == key(a) }); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	if err := api.CheckEnv(out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// updatedPorts removes the ports of rm (matched by published port and
// protocol; one not published is an error) and adds those of add.
func updatedPorts(s *State, svc api.Service, ports, add, rm []api.PortConfig) ([]api.PortConfig, error) {
	out := slices.Clone(ports)
	for _, r := range rm {
		if r.Protocol == "" {
			r.Protocol = api.ProtoTCP
		}
		i := slices.IndexFunc(out, func(p api.PortConfig) bool { return portKey(p) == portKey(r) })
		if i < 0 {
			return nil, api.Invalid("port %s is not published by service %s", portKey(r), svc.Name)
		}
		out = slices.Delete(out, i, i+1)
	}
	out, err := checkPorts(append(out, add...), svc.Endpoint.Mode)
	if err != nil {
		return nil, err
	}
	if err := checkPublishable(s, svc.ID, out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// updatedNetworks detaches the networks of rm (each must be attached) and
// attaches those of add (each must exist and not be attached already).
func updatedNetworks(s *State, svc api.Service, nets []api.NetworkAttachment, add []api.NetworkAttachment, rm []string) ([]api.NetworkAttachment, error) {
	out := slices.Clone(nets)
	for _, r := range rm {
		id, err := s.NetworkID(r)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(out, func(a api.NetworkAttachment) bool { return a.Target == id })
		if i < 0 {
			return nil, api.Invalid("network %s is not attached to service %s", api.Clip(r), svc.Name)
		}
		out = slices.Delete(out, i, i+1)
	}
	added, err := attachments(s, add)
	if err != nil {
		return nil, err
	}
	for _, a := range added {
		if slices.ContainsFunc(out, func(b api.NetworkAttachment) bool { return b.Target == a.Target }) {
			return nil, api.Invalid("service %s is already attached to network %s", svc.Name, s.Networks[a.Target].Name)
		}
		out = append(out, a)
	}
	if len(out) > api.MaxNetworks {
		return nil, api.Invalid("too many networks: %d, at most %d", len(out), api.MaxNetworks)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// updateConfig checks a create request's config and fills Docker's
// defaults for nil.
func updateConfig(c *api.UpdateConfig, what string) (api.UpdateConfig, error) {
	if c == nil {
		return api.DefaultUpdateConfig(), nil
	}
	return updatedConfig(*c, nil, what)
}

// updatedConfig is c with the change's fields set, checked; what is
// update or rollback, for the errors.
func updatedConfig(c api.UpdateConfig, ch *api.UpdateConfigChange, what string) (api.UpdateConfig, error) {
	c = effectiveConfig(c)
	if ch != nil {
		if ch.Parallelism != nil {
			c.Parallelism = *ch.Parallelism
		}
		if ch.Delay != nil {
			c.Delay = *ch.Delay
		}
		if ch.FailureAction != nil {
			c.FailureAction = *ch.FailureAction
		}
		if ch.Monitor != nil {
			c.Monitor = *ch.Monitor
		}
		if ch.Order != nil {
			c.Order = *ch.Order
		}
	}
	switch {
	case c.Parallelism > 1000:
		return c, api.Invalid("invalid %s parallelism %d: want 0 (all at once) to 1000", what, c.Parallelism)
	case c.Delay < 0 || c.Delay > 24*time.Hour:
		return c, api.Invalid("invalid %s delay %s: want 0 to 24h", what, c.Delay)
	case c.Monitor < 0 || c.Monitor > 24*time.Hour:
		return c, api.Invalid("invalid %s monitor %s: want 0 to 24h", what, c.Monitor)
	case c.Order != api.OrderStopFirst && c.Order != api.OrderStartFirst:
		return c, api.Invalid("invalid %s order %s: want stop-first or start-first", what, api.Quote(c.Order))
	case c.FailureAction != api.ActionPause && c.FailureAction != api.ActionContinue &&
		(c.FailureAction != api.ActionRollback || what != "update"):
		want := "pause, continue or rollback"
		if what != "update" {
			want = "pause or continue"
		}
		return c, api.Invalid("invalid %s failure action %s: want %s", what, api.Quote(c.FailureAction), want)
	}
	return c, nil
}

// effectiveConfig is Docker's default for a config never set (a service
// made before updates existed).
func effectiveConfig(c api.UpdateConfig) api.UpdateConfig {
	if c == (api.UpdateConfig{}) {
		return api.DefaultUpdateConfig()
	}
	return c
}

// slotKey names a slot: its number, or for a global service's task (slot
// 0) its node.
type slotKey struct {
	slot int
	node string
}

func keyOf(t api.Task) slotKey {
	if t.Slot == 0 {
		return slotKey{0, t.NodeID}
	}
	return slotKey{t.Slot, ""}
}

// outdated says whether a task runs another spec than its service's:
// image, arguments, environment, networks, or an update forced since.
func outdated(s *State, svc api.Service, t api.Task) bool {
	if t.Image != svc.Image || !slices.Equal(t.Args, svc.Args) || !slices.Equal(t.Env, svc.Env) || t.ForceUpdate != svc.ForceUpdate {
		return true
	}
	var nets []string
	for _, tn := range t.Networks {
		if !tn.Connected { // network connect's are the task's, not its spec's
			nets = append(nets, tn.NetworkID)
		}
	}
	return !slices.Equal(nets, taskNetworks(s, svc))
}

// hasOutdated says whether any current task of the service runs another
// spec than its own.
func hasOutdated(s *State, svc api.Service) bool {
	for _, t := range s.Tasks {
		if t.ServiceID == svc.ID && t.Current() && outdated(s, svc, t) {
			return true
		}
	}
	return false
}

// outdatedSlots are the slots whose current tasks are all outdated, in
// order; a slot with both an old and a new task (start-first, under way)
// is the batch's.
func outdatedSlots(s *State, svc api.Service) []slotKey {
	old, fresh := map[slotKey]bool{}, map[slotKey]bool{}
	for _, t := range s.Tasks {
		if t.ServiceID != svc.ID || !t.Current() {
			continue
		}
		if outdated(s, svc, t) {
			old[keyOf(t)] = true
		} else {
			fresh[keyOf(t)] = true
		}
	}
	var out []slotKey
	for k := range old {
		if !fresh[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b slotKey) int {
		if a.slot != b.slot {
			return a.slot - b.slot
		}
		return strings.Compare(a.node, b.node)
	})
	return out
}

// nodeReports is what the nodes say, which the leader's sync reads from the
// tables: the tasks' statuses, and by service and node the tasks each
// node's balancers and DNS send to.
type nodeReports struct {
	statuses   map[string]api.TaskStatus
	programmed map[string]map[string][]string
}

// reachable says whether a task runs and every ready node that sends to
// its service has programmed it (as service ls's Reachable counts them):
// a request through any node may then reach it.
func reachable(s *State, svc api.Service, t api.Task, r nodeReports) bool {
	if r.statuses[t.ID].State != api.TaskRunning {
		return false
	}
	return api.ProgrammedBy(r.programmed[svc.ID], sendingNodes(s, svc), t.ID)
}

// sendingNodes are [api.Service.SendingNodes] in the state: the ready
// nodes that must program a task before it counts as reachable.
func sendingNodes(s *State, svc api.Service) []string {
	ready := map[string]bool{}
	for id, n := range s.Nodes {
		ready[id] = n.Status == api.StatusReady
	}
	return svc.SendingNodes(s.Tasks, ready)
}

// advanceUpdates moves every update or rollback under way one step.
func advanceUpdates(s *State, r nodeReports, now time.Time) error {
	for _, id := range slices.Sorted(maps.Keys(s.Rollouts)) {
		if err := advanceUpdate(s, id, r, now); err != nil {
			return err
		}
	}
	return nil
}

// advanceUpdate moves a service's update one step: when the batch under
// way has all its new tasks running and reachable (start-first: their old
// tasks are shut down then), and the update delay after it has passed,
// the next batch starts; when no slot is left outdated, the update is
// done. A new task that fails or ends does as the failure action says.
func advanceUpdate(s *State, id string, r nodeReports, now time.Time) error {
	svc, ok := s.Services[id]
	if !ok || !svc.UpdateStatus.Rolling() {
		delete(s.Rollouts, id)
		return nil
	}
	ro := s.Rollouts[id]
	rollingBack := svc.UpdateStatus.State == api.UpdateRollbackStarted
	cfg := effectiveConfig(svc.UpdateConfig)
	if rollingBack {
		cfg = effectiveConfig(svc.RollbackConfig)
	}
	for _, tid := range slices.Sorted(maps.Keys(ro.Watched)) {
		t, ok := s.Tasks[tid]
		switch {
		case ok && newTaskEnded(t, r):
			if cfg.FailureAction != api.ActionContinue {
				return updateFailed(s, id, t, cfg, rollingBack, now)
			}
			delete(ro.Watched, tid)
		case !ok || !t.Current() || !now.Before(ro.Watched[tid]):
			delete(ro.Watched, tid) // scaled away, moved off its node, or watched long enough
		}
	}
	var pending []string
	for _, tid := range ro.Batch {
		t, ok := s.Tasks[tid]
		if !ok {
			continue // scaled away
		}
		if newTaskEnded(t, r) {
			if cfg.FailureAction == api.ActionContinue {
				continue
			}
			return updateFailed(s, id, t, cfg, rollingBack, now)
		}
		if !t.Current() {
			continue // moved off its node: placed again as any slot is
		}
		if !reachable(s, svc, t, r) {
			pending = append(pending, tid)
		}
	}
	// start-first: an old task goes once its slot's new one serves (so
	// does one left by an update that a newer one replaced).
	if err := retireReplaced(s, svc, r, now); err != nil {
		return err
	}
	if len(pending) > 0 {
		ro.Batch = pending
		s.Rollouts[id] = ro
		return nil
	}
	if len(ro.Batch) > 0 {
		if cfg.Monitor > 0 {
			if ro.Watched == nil {
				ro.Watched = map[string]time.Time{}
			}
			for _, tid := range ro.Batch {
				ro.Watched[tid] = now.Add(cfg.Monitor)
			}
		}
		ro.Batch = nil
		if cfg.Delay > 0 {
			ro.NextBatchAt = now.Add(cfg.Delay)
		}
	}
	s.Rollouts[id] = ro
	if now.Before(ro.NextBatchAt) {
		return nil
	}
	slots := outdatedSlots(s, svc)
	if len(slots) == 0 {
		// Done once no old task is left (one whose slot's new task is not
		// reachable yet waits for it) and the new ones have lasted their
		// monitor period.
		if !hasOutdated(s, svc) && len(ro.Watched) == 0 {
			finishRollout(s, id, now)
		}
		return nil
	}
	if n := int(cfg.Parallelism); n > 0 && n < len(slots) {
		slots = slots[:n]
	}
	for _, k := range slots {
		tid, err := replaceSlot(s, svc, k, cfg.Order, now)
		if err != nil {
			return err
		}
		if tid != "" {
			ro.Batch = append(ro.Batch, tid)
		}
	}
	ro.NextBatchAt = time.Time{}
	s.Rollouts[id] = ro
	return ensureLBAddrs(s)
}

// newTaskEnded says whether an update's new task failed or ended: its
// node reported it so, or the leader has shut it down after such a
// report (rather than moved it off its node).
func newTaskEnded(t api.Task, r nodeReports) bool {
	return !t.Current() && api.Terminal(t.Status.State) || api.Terminal(r.statuses[t.ID].State)
}

// retireReplaced shuts down the outdated current tasks of the slots whose
// up-to-date task is reachable.
func retireReplaced(s *State, svc api.Service, r nodeReports, now time.Time) error {
	serving := map[slotKey]bool{}
	for _, t := range s.Tasks {
		if t.ServiceID == svc.ID && t.Current() && !outdated(s, svc, t) && reachable(s, svc, t, r) {
			serving[keyOf(t)] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Tasks)) {
		t := s.Tasks[id]
		if t.ServiceID == svc.ID && t.Current() && serving[keyOf(t)] && outdated(s, svc, t) {
			if err := shutdownTask(s, id, updateShutdown(now), now); err != nil {
				return err
			}
		}
	}
	return nil
}

func updateShutdown(now time.Time) api.TaskStatus {
	return api.TaskStatus{State: api.TaskShutdown, Message: "shutdown for update", Timestamp: now}
}

// replaceSlot starts a slot's new task, shutting its current tasks down
// first when stop-first (always for a global service: its node holds one
// task). It returns the new task's ID; none when no node can take it now,
// and the slot is then left as it is.
func replaceSlot(s *State, svc api.Service, k slotKey, order string, now time.Time) (string, error) {
	tasks := slotTasks(s, svc.ID, k.slot, k.node)
	if len(tasks) == 0 {
		return "", nil
	}
	if k.slot != 0 {
		if _, err := pickNode(s, svc.ID); err != nil {
			return "", nil
		}
	}
	if order != api.OrderStartFirst || k.slot == 0 {
		for _, t := range tasks {
			if t.Current() {
				if err := shutdownTask(s, t.ID, updateShutdown(now), now); err != nil {
					return "", err
				}
			}
		}
	}
	node := k.node
	if k.slot != 0 {
		var err error
		if node, err = pickNode(s, svc.ID); err != nil {
			return "", err // a node could take it a moment ago
		}
	}
	id, err := addTask(s, svc, k.slot, node, tasks[0].Restarts, now)
	if err != nil {
		return "", err
	}
	return id, pruneHistory(s, svc.ID, k.slot, k.node)
}

// updateFailed does an update's failure action for a new task that
// failed or ended: pause (the update stops where it is) or, for an
// update, rollback.
func updateFailed(s *State, id string, t api.Task, cfg api.UpdateConfig, rollingBack bool, now time.Time) error {
	svc := s.Services[id]
	if cfg.FailureAction == api.ActionRollback && !rollingBack {
		return rollbackService(s, id, fmt.Sprintf("update rolled back due to failure or early termination of task %s", t.ID), now)
	}
	st := *svc.UpdateStatus
	what := "update"
	st.State = api.UpdatePaused
	if rollingBack {
		what, st.State = "rollback", api.UpdateRollbackPaused
	}
	st.Message = fmt.Sprintf("%s paused due to failure or early termination of task %s", what, t.ID)
	svc.UpdateStatus = &st
	s.Services[id] = svc
	delete(s.Rollouts, id)
	return nil
}
