package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/dns"
	"github.com/meshd/meshd/mesh/records"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// localTask is a task this node runs.
type localTask struct {
	spec    api.Task
	sandbox string // network namespace file
	gwVeth  string // host end of the gateway veth, "" when internal only
	gwAddr  netip.Addr
	// ifNames are the sandbox's links: by network ID, and the gateway's
	// (gwIf). At the start eth<i> is the i-th network and the gateway the
	// next; a network connected later takes the first free ethN.
	ifNames map[string]string
	gwIf    string
	// bridges are the node's bridge networks the task is connected to, in
	// connection order (network connect); their links are the container
	// engine's, their ethN in ifNames.
	bridges []api.TaskNetwork
	rules   *lb.TaskSyncer // the task's REDIRECTs and resolver DNAT
	// drainUntil: the task left the desired state; its backends have
	// weight 0 everywhere until then, and it is stopped. Zero when not
	// draining; only the agent goroutine touches it.
	drainUntil time.Time
	drainLate  bool // the delay is over, some node has not applied the drain: logged once
	// mu orders the announcements of the agent (a drain starts or is
	// cancelled) and of the supervisor (the process starts or ends), so
	// that the last one says what is true: no backend for a process that
	// ended, and the weight of the current drain.
	mu        sync.Mutex
	running   bool   // the process runs
	exited    bool   // the process ended (or never started): it is not run again
	exitCode  *int   // the process's exit status once it has ended
	listening bool   // ... and listens on its target ports: its backends are announced
	gen       uint64 // counts the process's state changes, so a late readiness check is dropped
	draining  bool
	// checkStack: the kernel reported a change in the sandbox; its links
	// are compared with what they should be at the next reconcile.
	checkStack bool
	endpoints  map[string]records.Endpoint // by network, set before the supervisor starts
	dns        *dns.Resolver               // its embedded DNS
	dnsPorts   lb.DNSPorts                 // the resolver's ports on 127.0.0.11
	cancel     context.CancelFunc
	done       chan struct{}
}

func (a *Agent) taskDir(t api.Task) string { return filepath.Join(a.cfg.RunDir, "tasks", t.ID) }

// TaskLogPath is the file a task's stdout and stderr go to while this
// node keeps the task (it goes with the task's directory); safe from any
// goroutine.
func (a *Agent) TaskLogPath(taskID string) string {
	return filepath.Join(a.cfg.RunDir, "tasks", taskID, "task.log")
}

// startTask builds a task's sandbox and starts its process, which runs
// once. A failure removes whatever was built and keeps the task as one
// that exited, so that it is not started again: like a process that
// ended, it waits for the manager to shut it down and maybe replace it.
func (a *Agent) startTask(ctx context.Context, t api.Task, st records.Objects) (err error) {
	lt := &localTask{spec: t, sandbox: filepath.Join(a.nsDir, shortID(t)), done: make(chan struct{}), ifNames: map[string]string{}}
	defer func() {
		if err != nil {
			a.removeTaskSandbox(lt)
			done := make(chan struct{})
			close(done)
			a.tasks[t.ID] = &localTask{spec: t, exited: true, done: done}
		}
	}()
	if err := a.cfg.Kernel.EnsureNS(lt.sandbox); err != nil {
		return err
	}
	a.watch(lt.sandbox)
	for i, tn := range t.Networks {
		if err := a.attach(lt, fmt.Sprintf("eth%d", i), tn); err != nil {
			return err
		}
	}
	if wantsGateway(t, st) {
		if err := a.attachGateway(lt, fmt.Sprintf("eth%d", len(t.Networks))); err != nil {
			return err
		}
	}
	lt.rules = lb.NewTaskSyncer(a.cfg.Rules(lt.sandbox))
	if err := a.attachDNS(lt, st); err != nil {
		return err
	}
	// The resolver must answer before the process first asks it.
	if err := lt.rules.Sync(ctx, taskRules(st, t, lt.dnsPorts)); err != nil {
		return fmt.Errorf("task rules: %w", err)
	}
	dir := a.taskDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("task dir: %w", err)
	}
	etc, err := writeEtcFiles(dir, t, st)
	if err != nil {
		return err
	}
	spec := task.Spec{ID: t.ID, Hostname: t.Hostname(), NetNS: lt.sandbox, Image: t.Image, Args: t.Args, Env: t.Env,
		ResolvConf: etc.ResolvConf, HostsFile: etc.Hosts, HostnameFile: etc.Hostname, LogPath: a.TaskLogPath(t.ID)}
	spec.Image, spec.Args, spec.WorkDir = task.ProcessOf(t)
	tctx, cancel := context.WithCancel(ctx)
	lt.cancel = cancel
	a.tasks[t.ID] = lt
	a.procs.start(t.ID)
	lt.endpoints = endpointRecords(t, st)
	go func() {
		defer close(lt.done)
		a.cfg.Runner(tctx, spec, func(s task.State) {
			a.report(t, api.TaskStatus{State: s.State, PID: s.PID, Err: s.Err, ExitCode: s.ExitCode, Sandbox: lt.sandbox})
			// Backends are announced only while the process runs.
			lt.mu.Lock()
			defer lt.mu.Unlock()
			if s.State == api.TaskRunning && !lt.running {
				a.cfg.Metrics.TaskStarted(t.Restarts > 0)
			}
			lt.running = s.State == api.TaskRunning
			lt.exited = lt.exited || api.Terminal(s.State)
			if s.ExitCode != nil {
				lt.exitCode = s.ExitCode
			}
			lt.gen++
			if !lt.running {
				lt.listening = false
				a.withdraw(lt.spec)
				return
			}
			gen, ports := lt.gen, targetPorts(lt)
			if len(ports) == 0 || s.PID == 0 {
				lt.listening = true
				a.announce(lt, lt.draining)
				return
			}
			go func() {
				ok := a.waitListening(s.PID, ports, lt.done)
				lt.mu.Lock()
				defer lt.mu.Unlock()
				if lt.gen != gen || !lt.running {
					return // the process ended or restarted meanwhile
				}
				if !ok {
					a.log.Warn("task not listening on its target ports: announced anyway", "task", lt.spec.Name(), "wait", readyTimeout)
				}
				lt.listening = true
				a.announce(lt, lt.draining)
			}()
		})
	}()
	a.log.Info("task started", "task", t.Name(), "service", t.ServiceName, "sandbox", lt.sandbox)
	return nil
}

func (a *Agent) announce(lt *localTask, draining bool) {
	for netID, rec := range lt.endpoints {
		rec.Draining = draining
		if err := records.PutEndpoint(a.cfg.DB, netID, lt.spec.ID, rec); err != nil {
			a.log.Warn("announce endpoint", "task", lt.spec.Name(), "err", err)
			continue
		}
		action := "added"
		if draining {
			action = "drained"
		}
		a.backendEvent(action, lt.spec, netID)
	}
}

func (a *Agent) withdraw(t api.Task) {
	for _, tn := range t.Networks {
		had := records.HasEndpoint(a.cfg.DB, tn.NetworkID, t.ID)
		if err := records.DeleteEndpoint(a.cfg.DB, tn.NetworkID, t.ID); err != nil {
			a.log.Warn("withdraw endpoint", "task", t.Name(), "err", err)
			continue
		}
		if had {
			a.backendEvent("removed", t, tn.NetworkID)
		}
	}
}

// attach puts the task on one overlay network as ifName and announces
// its endpoint to the other nodes.
func (a *Agent) attach(lt *localTask, ifName string, tn api.TaskNetwork) error {
	p, err := netip.ParsePrefix(tn.Addr)
	if err != nil {
		return fmt.Errorf("task address %q: %w", tn.Addr, err)
	}
	mac, err := net.ParseMAC(tn.MAC)
	if err != nil {
		return fmt.Errorf("task mac %q: %w", tn.MAC, err)
	}
	ep := overlay.Endpoint{ID: lt.spec.ID, IP: p.Addr(), MAC: mac, Sandbox: lt.sandbox, IfName: ifName}
	if err := a.ov.EnsureEndpoint(tn.NetworkID, ep); err != nil {
		return fmt.Errorf("attach %s to %s: %w", lt.spec.Name(), tn.NetworkName, err)
	}
	lt.ifNames[tn.NetworkID] = ifName
	peer := records.Peer{IP: p.Addr(), MAC: mac, VTEP: a.cfg.AdvertiseAddr}
	if err := records.SetPeer(a.cfg.DB, tn.NetworkID, lt.spec.ID, peer); err != nil {
		return fmt.Errorf("announce %s on %s: %w", lt.spec.Name(), tn.NetworkName, err)
	}
	return nil
}

// attachGateway gives the task its way out through mesh_gwbridge.
func (a *Agent) attachGateway(lt *localTask, ifName string) error {
	ip, err := a.gwIPs.Allocate(netip.Addr{})
	if err != nil {
		return fmt.Errorf("gateway address for %s: %w", lt.spec.Name(), err)
	}
	lt.gwAddr, lt.gwVeth, lt.gwIf = ip, gatewayVethName(lt.spec.ID), ifName
	if err := a.gw.Attach(lt.sandbox, ifName, lt.gwVeth, ip); err != nil {
		return fmt.Errorf("attach %s to %s: %w", lt.spec.Name(), lb.GatewayBridgeName, err)
	}
	return nil
}

// detachGateway takes the task's link to mesh_gwbridge away, if it has
// one, and gives its address back.
func (a *Agent) detachGateway(lt *localTask) {
	if lt.gwVeth == "" {
		return
	}
	if err := a.gw.Detach(lt.gwVeth); err != nil {
		a.log.Warn("detach gateway", "task", lt.spec.Name(), "err", err)
	}
	_ = a.gwIPs.Release(lt.gwAddr)
	lt.gwVeth, lt.gwAddr, lt.gwIf = "", netip.Addr{}, ""
}

// drainOrStop takes a task out of service: first its backends get
// weight 0 on every node for the drain delay, so that no new connection
// goes to it while established ones finish; then it is stopped. A task
// that never announced a backend, or whose process already ended, is
// stopped at once.
func (a *Agent) drainOrStop(lt *localTask) {
	delay := a.cfg.DrainDelay
	switch {
	// A container is no service's backend: docker stop stops it at once.
	case delay <= 0 || lt.spec.Standalone != nil || a.hasExited(lt) || !a.announced(lt):
		a.stopTask(lt)
	case lt.drainUntil.IsZero():
		lt.drainUntil = a.now().Add(delay)
		a.setDraining(lt, true)
		time.AfterFunc(delay, a.poke)
		a.log.Info("draining task", "task", lt.spec.Name(), "delay", delay)
	case a.now().Before(lt.drainUntil):
	default:
		// The delay counts from the drain's announcement, but a node that
		// has not applied it yet still sends new connections to the task,
		// and they would be lost with its sandbox. Wait for every node to
		// report the task gone from its balancers, for a bounded time: a
		// node that never reports must not keep the task forever.
		late := a.stillSentTo(lt)
		over := a.now().Sub(lt.drainUntil)
		if len(late) == 0 || over >= maxDrainWait {
			if len(late) > 0 {
				a.log.Warn("stopping a draining task some nodes still send to", "task", lt.spec.Name(), "nodes", late, "waited", over.Round(time.Millisecond))
			}
			a.stopTask(lt)
			return
		}
		if !lt.drainLate {
			lt.drainLate = true
			a.log.Info("drain not applied everywhere yet", "task", lt.spec.Name(), "nodes", late)
		}
		time.AfterFunc(drainPoll, a.poke)
	}
}

// maxDrainWait bounds how long a drained task waits, beyond the drain
// delay, for the nodes that still send to it; drainPoll is how often it
// looks again (gossip also wakes the agent when a report arrives).
const (
	maxDrainWait = 10 * time.Second
	drainPoll    = 100 * time.Millisecond
)

// stillSentTo names the reachable nodes whose last programmed report
// still counts the task among the service's backends.
func (a *Agent) stillSentTo(lt *localTask) []string {
	if lt.spec.ServiceID == "" {
		return nil
	}
	reports := records.Programmed(a.cfg.DB)[lt.spec.ServiceID]
	if len(reports) == 0 {
		return nil
	}
	var late []string
	for _, m := range a.cfg.DB.Members() {
		if !records.Reachable(m.State) {
			continue
		}
		if slices.Contains(reports[m.Name], lt.spec.ID) {
			late = append(late, m.Name)
		}
	}
	slices.Sort(late)
	return late
}

// undrain puts a draining task that is desired again back in service, at
// weight 1 on every node: a task may leave the state served and come back
// (a scale down undone, a leader that republishes an older view), and a
// drain that is never cancelled would keep it at weight 0 for good.
func (a *Agent) undrain(lt *localTask) {
	if lt.drainUntil.IsZero() {
		return
	}
	lt.drainUntil, lt.drainLate = time.Time{}, false
	a.setDraining(lt, false)
	a.log.Info("task desired again: drain cancelled", "task", lt.spec.Name())
}

// setDraining sets the weight every node gives the task's backends (0
// when draining, else 1) by announcing them again, if the process runs.
func (a *Agent) setDraining(lt *localTask, on bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.draining = on
	if lt.running && lt.listening {
		a.announce(lt, on)
	}
}

func (a *Agent) hasExited(lt *localTask) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.exited
}

// announced says whether the task's backends are in the endpoint table.
func (a *Agent) announced(lt *localTask) bool {
	for netID := range lt.endpoints {
		if records.HasEndpoint(a.cfg.DB, netID, lt.spec.ID) {
			return true
		}
	}
	return false
}

// stopTask stops the process, then removes the sandbox and the entries.
// A task that failed to start (no process: cancel is nil) had its
// sandbox removed then.
func (a *Agent) stopTask(lt *localTask) {
	if lt.cancel != nil {
		lt.cancel()
		<-lt.done
		a.withdraw(lt.spec)
		a.removeTaskSandbox(lt)
	}
	if err := records.DeleteTaskStatus(a.cfg.DB, lt.spec.ID); err != nil {
		a.log.Warn("forget task status", "task", lt.spec.Name(), "err", err)
	}
	delete(a.tasks, lt.spec.ID)
	a.log.Info("task removed", "task", lt.spec.Name(), "service", lt.spec.ServiceName)
}

// removeTaskSandbox undoes what startTask built; each step tolerates
// absence. The task's resolver goes first: its sockets live in the
// sandbox and would keep the namespace alive.
func (a *Agent) removeTaskSandbox(lt *localTask) {
	if lt.dns != nil {
		if err := lt.dns.Close(); err != nil {
			a.log.Warn("close resolver", "task", lt.spec.Name(), "err", err)
		}
		lt.dns = nil
	}
	a.detachBridges(lt)
	for _, tn := range lt.spec.Networks {
		if err := records.DeletePeer(a.cfg.DB, tn.NetworkID, lt.spec.ID); err != nil {
			a.log.Debug("withdraw peer", "task", lt.spec.Name(), "err", err)
		}
		if err := a.ov.RemoveEndpoint(tn.NetworkID, lt.spec.ID); err != nil {
			a.log.Warn("detach endpoint", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
		}
	}
	a.detachGateway(lt)
	a.watcher.Unwatch(lt.sandbox) // its sockets would keep the namespace alive
	if err := a.cfg.Kernel.RemoveNS(lt.sandbox); err != nil {
		a.log.Warn("remove sandbox", "task", lt.spec.Name(), "err", err)
	}
	lt.mu.Lock()
	code := lt.exitCode
	lt.mu.Unlock()
	a.procs.stop(lt.spec.ID, code)
	if lt.spec.Standalone != nil {
		// docker logs reads a stopped container's output until it is
		// removed (see dropStopped).
		return
	}
	_ = os.RemoveAll(a.taskDir(lt.spec))
}

// dropStopped removes the output kept of the stopped standalone containers
// that are no longer this node's in st, and forgets how the tasks that
// left it ended.
func (a *Agent) dropStopped(st records.Objects) {
	for _, id := range a.procs.drop(func(id string) bool {
		t, ok := st.Tasks[id]
		return !ok || t.NodeID != a.cfg.NodeID
	}) {
		_ = os.RemoveAll(filepath.Join(a.cfg.RunDir, "tasks", id))
	}
}

// StoppedTask says whether task id has no process on this node: the
// agent has stopped it, or never started it. code is how the process
// ended, nil when unknown (it never ran here): the stop's SIGTERM mostly
// ends it, 143 under tini as docker stop shows for a container run with
// --init, 0 for a server that exits cleanly on it. The managers write a
// task's shutdown before its node ends the process, so their records
// lack it.
func (a *Agent) StoppedTask(id string) (code *int, stopped bool) {
	return a.procs.state(id)
}

// taskProcs are the tasks whose process runs here (live), and those
// stopped here (stopped, with their exit status), kept until they leave
// the desired state: the API reads them while the agent changes them.
type taskProcs struct {
	mu      sync.Mutex
	live    map[string]bool
	stopped map[string]*int
}

func (c *taskProcs) start(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[id] = true
}

func (c *taskProcs) stop(id string, code *int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, id)
	c.stopped[id] = code
}

func (c *taskProcs) state(id string) (*int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live[id] {
		return nil, false
	}
	return c.stopped[id], true
}

// drop forgets the stopped tasks gone says have left, and returns them.
func (c *taskProcs) drop(gone func(id string) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.stopped {
		if gone(id) {
			delete(c.stopped, id)
			out = append(out, id)
		}
	}
	return out
}
