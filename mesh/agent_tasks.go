package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/task"
	"github.com/meshd/meshd/overlay"
)

// resolvConf is every task's /etc/resolv.conf: the embedded DNS.
const resolvConf = "nameserver 127.0.0.11\noptions ndots:0\n"

func (a *agent) taskDir(t api.Task) string { return a.d.path(filepath.Join("tasks", t.ID)) }

// startTask builds a task's sandbox and starts supervising its process.
// A failure removes whatever was built.
func (a *agent) startTask(ctx context.Context, t api.Task, st State) (err error) {
	lt := &localTask{spec: t, sandbox: filepath.Join(a.nsDir, t.Hostname()), done: make(chan struct{})}
	defer func() {
		if err != nil {
			a.removeTaskSandbox(lt)
		}
	}()
	if _, err := nsfile.Ensure(lt.sandbox); err != nil {
		return err
	}
	for i, tn := range t.Networks {
		if err := a.attach(lt, i, tn); err != nil {
			return err
		}
	}
	if !internalOnly(t, st) {
		if err := a.attachGateway(lt, len(t.Networks)); err != nil {
			return err
		}
	}
	lt.rules = lb.NewTaskSyncer(lb.IPTables{NetNS: lt.sandbox})
	if err := a.attachDNS(lt, st); err != nil {
		return err
	}
	// The resolver must answer before the process first asks it.
	if err := lt.rules.Sync(ctx, taskRules(st, lt)); err != nil {
		return fmt.Errorf("task rules: %w", err)
	}
	dir := a.taskDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("task dir: %w", err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte(resolvConf), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", resolv, err)
	}
	spec := task.Spec{ID: t.ID, Hostname: t.Hostname(), NetNS: lt.sandbox, Image: t.Image, Args: t.Args,
		ResolvConf: resolv, LogPath: filepath.Join(dir, "task.log")}
	tctx, cancel := context.WithCancel(ctx)
	lt.cancel = cancel
	a.tasks[t.ID] = lt
	endpoints := endpointRecords(t, st)
	lt.endpoints = endpoints
	go func() {
		defer close(lt.done)
		task.Supervise(tctx, spec, func(s task.State) {
			a.report(t.ID, api.TaskStatus{State: s.State, PID: s.PID, Err: s.Err, Sandbox: lt.sandbox})
			// Backends are announced only while the process runs.
			if s.State == api.TaskRunning {
				a.announce(t, endpoints, lt.draining.Load())
			} else {
				a.withdraw(t)
			}
		})
	}()
	a.d.log.Info("task started", "task", t.Name(), "service", t.ServiceName, "sandbox", lt.sandbox)
	return nil
}

// endpointRecords computes a task's endpoint_table entries, by network.
func endpointRecords(t api.Task, st State) map[string]endpointRecord {
	svc := st.Services[t.ServiceID]
	out := map[string]endpointRecord{}
	for _, tn := range t.Networks {
		rec := endpointRecord{Name: t.Name() + "." + t.ID, Service: t.ServiceName, ServiceID: t.ServiceID,
			IP: addrOf(tn.Addr)}
		for _, v := range svc.Endpoint.VirtualIPs {
			if v.NetworkID == tn.NetworkID {
				rec.VIP = addrOf(v.Addr)
			}
		}
		for _, a := range svc.Networks {
			if a.Target == tn.NetworkID {
				rec.Aliases = a.Aliases
			}
		}
		for _, p := range svc.Endpoint.Ports {
			if p.PublishMode == api.PublishIngress {
				rec.Ports = append(rec.Ports, p)
			}
		}
		out[tn.NetworkID] = rec
	}
	return out
}

// addrOf drops the prefix length of a CIDR ("10.0.0.3/24" → "10.0.0.3").
func addrOf(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Addr().String()
	}
	return cidr
}

func (a *agent) announce(t api.Task, recs map[string]endpointRecord, draining bool) {
	for netID, rec := range recs {
		rec.Draining = draining
		b, _ := json.Marshal(rec)
		if err := a.d.db.Put(tableEndpoints, netID, t.ID, b); err != nil {
			a.d.log.Warn("announce endpoint", "task", t.Name(), "err", err)
		}
	}
}

func (a *agent) withdraw(t api.Task) {
	for _, tn := range t.Networks {
		if _, ok := a.d.db.Get(tableEndpoints, tn.NetworkID, t.ID); !ok {
			continue
		}
		if err := a.d.db.Delete(tableEndpoints, tn.NetworkID, t.ID); err != nil {
			a.d.log.Warn("withdraw endpoint", "task", t.Name(), "err", err)
		}
	}
}

// internalOnly: a task whose networks are all internal gets no gateway.
func internalOnly(t api.Task, st State) bool {
	if len(t.Networks) == 0 {
		return false
	}
	for _, tn := range t.Networks {
		if !st.Networks[tn.NetworkID].Internal {
			return false
		}
	}
	return true
}

// attach puts the task on one overlay network as eth<i> and announces
// its endpoint to the other nodes.
func (a *agent) attach(lt *localTask, i int, tn api.TaskNetwork) error {
	p, err := netip.ParsePrefix(tn.Addr)
	if err != nil {
		return fmt.Errorf("task address %q: %w", tn.Addr, err)
	}
	mac, err := net.ParseMAC(tn.MAC)
	if err != nil {
		return fmt.Errorf("task mac %q: %w", tn.MAC, err)
	}
	ep := overlay.Endpoint{ID: lt.spec.ID, IP: p.Addr(), MAC: mac, Sandbox: lt.sandbox, IfName: fmt.Sprintf("eth%d", i)}
	if err := a.ov.EnsureEndpoint(tn.NetworkID, ep); err != nil {
		return fmt.Errorf("attach %s to %s: %w", lt.spec.Name(), tn.NetworkName, err)
	}
	rec, _ := json.Marshal(peerRecord{IP: p.Addr().String(), MAC: tn.MAC, VTEP: a.d.cfg.AdvertiseAddr.String()})
	if err := a.d.db.Put(tableOverlayPeer, tn.NetworkID, lt.spec.ID, rec); err != nil {
		return fmt.Errorf("announce %s on %s: %w", lt.spec.Name(), tn.NetworkName, err)
	}
	return nil
}

// attachGateway gives the task its way out through mesh_gwbridge.
func (a *agent) attachGateway(lt *localTask, i int) error {
	ip, err := a.gwIPs.Allocate(netip.Addr{})
	if err != nil {
		return fmt.Errorf("gateway address for %s: %w", lt.spec.Name(), err)
	}
	lt.gwAddr, lt.gwVeth = ip, gatewayVethName(lt.spec.ID)
	if err := a.gw.Attach(lt.sandbox, fmt.Sprintf("eth%d", i), lt.gwVeth, ip); err != nil {
		return fmt.Errorf("attach %s to %s: %w", lt.spec.Name(), "mesh_gwbridge", err)
	}
	return nil
}

// gatewayVethName names the host end of a task's gateway veth: "gw" and
// ten characters of the task ID fit IFNAMSIZ.
func gatewayVethName(taskID string) string {
	if len(taskID) > 10 {
		taskID = taskID[:10]
	}
	return "gw" + taskID
}

// drainOrStop takes a task out of service: first its backends get
// weight 0 on every node for the drain delay, so that no new connection
// goes to it while established ones finish; then it is stopped. A task
// that never announced a backend is stopped at once.
func (a *agent) drainOrStop(lt *localTask) {
	delay := a.d.cfg.DrainDelay
	switch {
	case delay <= 0 || !a.announced(lt):
		a.stopTask(lt)
	case lt.drainUntil.IsZero():
		lt.drainUntil = time.Now().Add(delay)
		lt.draining.Store(true)
		a.announce(lt.spec, lt.endpoints, true)
		time.AfterFunc(delay, a.poke)
		a.d.log.Info("draining task", "task", lt.spec.Name(), "delay", delay)
	case !time.Now().Before(lt.drainUntil):
		a.stopTask(lt)
	}
}

// announced says whether the task's backends are in the endpoint table.
func (a *agent) announced(lt *localTask) bool {
	for netID := range lt.endpoints {
		if _, ok := a.d.db.Get(tableEndpoints, netID, lt.spec.ID); ok {
			return true
		}
	}
	return false
}

// stopTask stops the process, then removes the sandbox and the entries.
func (a *agent) stopTask(lt *localTask) {
	if lt.cancel != nil {
		lt.cancel()
		<-lt.done
	}
	a.withdraw(lt.spec)
	a.removeTaskSandbox(lt)
	if err := a.d.db.Delete(tableTaskStatus, "", lt.spec.ID); err != nil {
		a.d.log.Warn("forget task status", "task", lt.spec.Name(), "err", err)
	}
	delete(a.tasks, lt.spec.ID)
	a.d.log.Info("task removed", "task", lt.spec.Name(), "service", lt.spec.ServiceName)
}

// removeSandbox undoes what startTask built; each step tolerates absence.
func (a *agent) removeTaskSandbox(lt *localTask) {
	for _, tn := range lt.spec.Networks {
		if err := a.d.db.Delete(tableOverlayPeer, tn.NetworkID, lt.spec.ID); err != nil {
			a.d.log.Debug("withdraw peer", "task", lt.spec.Name(), "err", err)
		}
		if err := a.ov.RemoveEndpoint(tn.NetworkID, lt.spec.ID); err != nil {
			a.d.log.Warn("detach endpoint", "task", lt.spec.Name(), "network", tn.NetworkName, "err", err)
		}
	}
	if lt.gwVeth != "" {
		if err := a.gw.Detach(lt.gwVeth); err != nil {
			a.d.log.Warn("detach gateway", "task", lt.spec.Name(), "err", err)
		}
		_ = a.gwIPs.Release(lt.gwAddr)
	}
	if err := nsfile.Remove(lt.sandbox); err != nil {
		a.d.log.Warn("remove sandbox", "task", lt.spec.Name(), "err", err)
	}
	_ = os.RemoveAll(a.taskDir(lt.spec))
}
