package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/meshd/meshd/ipam"
	"github.com/meshd/meshd/lb"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/meshd/meshd/mesh/task"
)

func (e *Engine) containerDir(t api.Task) string {
	return filepath.Join(e.cfg.RunDir, "containers", t.ID)
}

// TaskLogPath is the file a standalone container's output goes to; ""
// when id is none of them.
func (e *Engine) TaskLogPath(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.st.Containers {
		if c.Task.ID == id {
			return filepath.Join(e.containerDir(c.Task), "container.log")
		}
	}
	return ""
}

// Ended says whether id is a standalone container whose process is not
// running; ok is false when id is none of them.
func (e *Engine) Ended(id string) (ended, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.st.Containers {
		if c.Task.ID == id {
			return e.boxes[id] == nil, true
		}
	}
	return false, false
}

// Tasks are the standalone containers as tasks, oldest first.
func (e *Engine) Tasks() []api.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]api.Task, 0, len(e.st.Containers))
	for _, c := range e.st.Containers {
		out = append(out, e.viewLocked(c))
	}
	return out
}

func (e *Engine) viewLocked(c *container) api.Task {
	t := c.Task
	sa := *t.Standalone
	t.Standalone = &sa
	t.NodeID, t.NodeName = e.cfg.NodeID, e.cfg.NodeName
	return t
}

// Run creates a container and starts it.
func (e *Engine) Run(req api.ContainerCreate) (api.Task, error) {
	if err := checkRequest(req); err != nil {
		return api.Task{}, err
	}
	img, err := images.Lookup(req.Image)
	if err != nil {
		return api.Task{}, api.NotFound("%v", err)
	}
	c, sb, err := e.createAndStart(req, img)
	if err != nil {
		return api.Task{}, err
	}
	return e.settle(c, sb), nil
}

func (e *Engine) createAndStart(req api.ContainerCreate, img images.Image) (*container, *sandbox, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil {
		return nil, nil, api.Errorf(503, "containers are not ready yet: meshd is starting")
	}
	c, err := e.createContainerLocked(req, img)
	if err != nil {
		return nil, nil, err
	}
	if err := e.startLocked(e.ctx, c); err != nil {
		e.forgetLocked(c)
		_ = e.saveLocked()
		return nil, nil, fmt.Errorf("start container %s: %w", c.Task.Name(), err)
	}
	if err := e.saveLocked(); err != nil {
		return nil, nil, err
	}
	e.syncRulesLocked(e.ctx)
	return c, e.boxes[c.Task.ID], nil
}

// settle waits until c's process is past starting, as docker run and
// start return once the container runs, and returns c as it is then.
// The wait is bounded: a process that hangs in its set-up shows as
// starting.
func (e *Engine) settle(c *container, sb *sandbox) api.Task {
	if sb != nil {
		t := time.NewTimer(settleWait)
		defer t.Stop()
		select {
		case <-sb.up:
		case <-t.C:
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.viewLocked(c)
}

func checkRequest(req api.ContainerCreate) error {
	if err := req.CheckSizes(); err != nil {
		return err
	}
	if req.Name != "" {
		if err := api.CheckContainerName(req.Name); err != nil {
			return err
		}
	}
	for _, a := range req.Networks {
		if err := checkAliases(a.Aliases); err != nil {
			return err
		}
	}
	for _, p := range req.Publish {
		if p.Proto != api.ProtoTCP && p.Proto != api.ProtoUDP {
			return api.Invalid("invalid proto: %s", api.Clip(p.Proto))
		}
		if p.Port == 0 {
			return api.Invalid("invalid containerPort: 0")
		}
		if p.HostIP != "" {
			if a, err := netip.ParseAddr(p.HostIP); err != nil || !a.Is4() {
				return api.Invalid("invalid IP address: %s", api.Clip(p.HostIP))
			}
		}
	}
	return nil
}

// checkAliases refuses an alias that is no DNS name.
func checkAliases(aliases []string) error {
	for _, al := range aliases {
		if !validName.MatchString(al) {
			return api.Invalid("invalid alias %s", api.Quote(al))
		}
	}
	return nil
}

// createContainerLocked allocates a container: its name, its addresses, its host
// ports. A failure gives back whatever it took.
func (e *Engine) createContainerLocked(req api.ContainerCreate, img images.Image) (c *container, err error) {
	name := req.Name
	if name != "" {
		if o := e.byContainerName(name); o != nil {
			return nil, api.Conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`,
				name, o.Task.ContainerID())
		}
	} else {
		name = makeName(func(n string) bool { return e.byContainerName(n) != nil })
	}
	sa, err := task.StandaloneOf(req, name)
	if err != nil {
		return nil, err
	}
	t := api.Task{ID: newID()[:25], Image: req.Image, Args: slices.Clone(req.Cmd), Env: slices.Clone(req.Env),
		DesiredState: api.TaskRunning, CreatedAt: e.cfg.Now().UTC(), Standalone: sa}
	made := &container{Task: t, Run: true, Named: req.Name != ""}
	c = made
	defer func() {
		if err != nil {
			e.releaseLocked(made)
		}
	}()
	attach := req.Networks
	if len(attach) == 0 {
		attach = []api.ContainerAttach{{Network: api.DefaultBridge}}
	}
	for _, a := range attach {
		if err := e.attachLocked(c, a); err != nil {
			return nil, err
		}
	}
	if c.Task.Standalone.Ports, err = e.portsLocked(req, img); err != nil {
		return nil, err
	}
	e.st.Containers = append(e.st.Containers, c)
	return c, nil
}

// attachLocked gives c an address on one more network.
func (e *Engine) attachLocked(c *container, a api.ContainerAttach) error {
	n := e.resolveNetworkLocked(a.Network)
	if n == nil {
		return api.NotFound("network %s not found", api.Clip(a.Network))
	}
	for _, tn := range c.Task.Networks {
		if tn.NetworkID == n.ID {
			return api.Conflict("container %s is already attached to network %s", c.Task.Name(), n.Name)
		}
	}
	tn, err := e.allocateLocked(n, a)
	if err != nil {
		return err
	}
	c.Task.Networks = append(c.Task.Networks, tn)
	return nil
}

// allocateLocked takes an address on n for a new attachment, the one
// a.IP asks for or the next free one, as Docker does.
func (e *Engine) allocateLocked(n *network, a api.ContainerAttach) (api.TaskNetwork, error) {
	if n.Default && len(a.Aliases) > 0 {
		return api.TaskNetwork{}, api.Invalid("network-scoped alias is supported only for containers in user defined networks")
	}
	var want netip.Addr
	if a.IP != "" {
		if n.Default {
			return api.TaskNetwork{}, api.Invalid("user specified IP address is supported on user defined networks only")
		}
		var err error
		if want, err = netip.ParseAddr(a.IP); err != nil || !want.Is4() {
			return api.TaskNetwork{}, api.Invalid("invalid IPv4 address: %s", api.Clip(a.IP))
		}
		if !n.IPAM.Subnet.Contains(want) {
			return api.TaskNetwork{}, api.Invalid("Invalid address %s: It does not belong to any of this network's subnets", want)
		}
	}
	addr, err := e.pools[n.ID].Allocate(want)
	if err != nil {
		if want.IsValid() {
			return api.TaskNetwork{}, api.Conflict("Address already in use: %s on %s", want, n.Name)
		}
		return api.TaskNetwork{}, api.Conflict("no address left on network %s: %v", n.Name, err)
	}
	return api.TaskNetwork{NetworkID: n.ID, NetworkName: n.Name, Addr: netip.PrefixFrom(addr, n.IPAM.Subnet.Bits()).String(),
		MAC: ipam.MAC(addr).String(), Aliases: slices.Clone(a.Aliases)}, nil
}

// portsLocked fixes a bridge container's host ports (AllocatePorts),
// free of the node's other containers' and of what PortFree refuses.
func (e *Engine) portsLocked(req api.ContainerCreate, img images.Image) ([]api.ContainerPort, error) {
	used := e.portsInUseLocked()
	return AllocatePorts(req, img, func(proto string, port uint16) bool {
		return used[portKey(proto, port)] || !e.cfg.PortFree(proto, port)
	})
}

// portKey names a host port: "tcp/8080".
func portKey(proto string, port uint16) string { return proto + "/" + strconv.Itoa(int(port)) }

// portsInUseLocked are the host ports the node's containers publish.
func (e *Engine) portsInUseLocked() map[string]bool {
	used := map[string]bool{}
	for _, o := range e.st.Containers {
		for _, p := range o.Task.Standalone.Ports {
			used[portKey(p.Proto, p.HostPort)] = true
		}
	}
	return used
}

// PortTaken says whether one of the node's containers publishes a host
// port.
func (e *Engine) PortTaken(proto string, port uint16) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.portsInUseLocked()[portKey(proto, port)]
}

// AllocatePorts fixes a run's host ports: -p's as given, then -P's for
// the image's ports (TCP), each without a host port given the first free
// one from api.EphemeralPortFirst, as Docker does. taken says whether a
// host port is in use already.
func AllocatePorts(req api.ContainerCreate, img images.Image, taken func(proto string, port uint16) bool) ([]api.ContainerPort, error) {
	ports := slices.Clone(req.Publish)
	if req.PublishAll {
		for _, p := range img.Ports {
			if !slices.ContainsFunc(ports, func(q api.ContainerPort) bool { return int(q.Port) == p && q.Proto == api.ProtoTCP }) {
				ports = append(ports, api.ContainerPort{Proto: api.ProtoTCP, Port: uint16(p)})
			}
		}
	}
	used := map[string]bool{}
	busy := func(proto string, port uint16) bool { return used[portKey(proto, port)] || taken(proto, port) }
	for i, p := range ports {
		if p.HostPort != 0 {
			if busy(p.Proto, p.HostPort) {
				return nil, api.Conflict("Bind for %s:%d failed: port is already allocated", cmpOr(p.HostIP, "0.0.0.0"), p.HostPort)
			}
			used[portKey(p.Proto, p.HostPort)] = true
			continue
		}
		for hp := api.EphemeralPortFirst; hp <= 65535; hp++ {
			if !busy(p.Proto, uint16(hp)) {
				ports[i].HostPort = uint16(hp)
				used[portKey(p.Proto, uint16(hp))] = true
				break
			}
		}
		if ports[i].HostPort == 0 {
			return nil, api.Conflict("no free host port for %d/%s", p.Port, p.Proto)
		}
	}
	return ports, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// releaseLocked gives back c's addresses.
func (e *Engine) releaseLocked(c *container) {
	for _, tn := range c.Task.Networks {
		if p := e.pools[tn.NetworkID]; p != nil {
			_ = p.Release(api.AddrOf(tn.Addr))
		}
	}
}

// forgetLocked drops c from the state and gives back what it held.
func (e *Engine) forgetLocked(c *container) {
	e.releaseLocked(c)
	e.st.Containers = slices.DeleteFunc(e.st.Containers, func(o *container) bool { return o == c })
	_ = os.RemoveAll(e.containerDir(c.Task))
}

func (e *Engine) byContainerName(name string) *container {
	for _, c := range e.st.Containers {
		if c.Task.Standalone.Name == name {
			return c
		}
	}
	return nil
}

// resolveLocked finds a container as docker does: ID, name, unique
// prefix.
func (e *Engine) resolveLocked(ref string) (*container, error) {
	tasks := make([]api.Task, len(e.st.Containers))
	for i, c := range e.st.Containers {
		tasks[i] = c.Task
	}
	t, err := api.MatchContainer(tasks, ref)
	if err != nil {
		return nil, err
	}
	for _, c := range e.st.Containers {
		if c.Task.ID == t.ID {
			return c, nil
		}
	}
	return nil, api.NotFound("No such container: %s", api.Clip(ref))
}

// Has says whether ref names a standalone container.
func (e *Engine) Has(ref string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.resolveLocked(ref)
	return err == nil
}

// vethName is the host end of c's veth on a network: veth + 7 hex, as
// Docker's.
func vethName(taskID, netID string) string {
	sum := sha256.Sum256([]byte(taskID + "\x00" + netID))
	return "veth" + hex.EncodeToString(sum[:])[:7]
}

// startLocked builds c's sandbox and starts its process.
func (e *Engine) startLocked(ctx context.Context, c *container) (err error) {
	t := c.Task
	sb := &sandbox{path: filepath.Join(e.nsDir, t.ContainerID()[:12]), veths: map[string]string{}, ifs: map[string]string{}, done: make(chan struct{}), up: make(chan struct{})}
	defer func() {
		if err != nil {
			e.removeSandbox(c, sb)
		}
	}()
	if err := e.cfg.Kernel.EnsureNS(sb.path); err != nil {
		return err
	}
	routed := false
	var addrs []netip.Addr
	for i, tn := range t.Networks {
		n := e.resolveNetworkLocked(tn.NetworkID)
		if n == nil {
			return fmt.Errorf("network %s is gone", tn.NetworkName)
		}
		route := !routed && !n.Internal
		veth := vethName(t.ID, n.ID)
		sb.veths[n.ID], sb.ifs[n.ID] = veth, "eth"+strconv.Itoa(i)
		if err := e.bridges[n.ID].Connect(sb.path, sb.ifs[n.ID], veth, api.AddrOf(tn.Addr), route); err != nil {
			return err
		}
		routed = routed || route
		addrs = append(addrs, api.AddrOf(tn.Addr))
	}
	reserveOverlayIfs(c, sb)
	pc, ln, err := e.cfg.Listen(sb.path)
	if err != nil {
		return err
	}
	sb.dnsPts = lb.DNSPorts{UDP: uint16(pc.LocalAddr().(*net.UDPAddr).Port), TCP: uint16(ln.Addr().(*net.TCPAddr).Port)}
	if sb.res, err = e.dns.Attach(querier(e.st, c), pc, ln); err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("serve embedded dns: %w", err)
	}
	sb.rules = lb.NewTaskSyncer(e.cfg.Rules(sb.path))
	if err := sb.rules.Sync(ctx, lb.TaskRules{DNS: sb.dnsPts}); err != nil {
		return fmt.Errorf("container rules: %w", err)
	}
	dir := e.containerDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("container dir: %w", err)
	}
	etc, err := task.WriteEtcFiles(dir, t.Hostname(), addrs)
	if err != nil {
		return err
	}
	spec := task.Spec{ID: t.ID, Hostname: t.Hostname(), NetNS: sb.path, Image: t.Image, Args: t.Args, Env: t.Env,
		ResolvConf: etc.ResolvConf, HostsFile: etc.Hosts, HostnameFile: etc.Hostname, LogPath: filepath.Join(dir, "container.log")}
	spec.Image, spec.Args, spec.WorkDir = task.ProcessOf(t)
	c.Task.Status = api.TaskStatus{State: api.TaskStarting, Timestamp: e.cfg.Now().UTC(), Sandbox: sb.path}
	c.Run = true
	tctx, cancel := context.WithCancel(ctx)
	sb.cancel = cancel
	e.boxes[t.ID] = sb
	go e.supervise(tctx, c, sb, spec)
	e.log.Info("container started", "container", t.Standalone.Name, "sandbox", sb.path)
	return nil
}

// supervise runs c's process; when it ends, the sandbox goes, and with
// --rm the container.
func (e *Engine) supervise(ctx context.Context, c *container, sb *sandbox, spec task.Spec) {
	e.cfg.Runner(ctx, spec, func(s task.State) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.boxes[c.Task.ID] != sb {
			return
		}
		c.Task.Status = api.TaskStatus{State: s.State, PID: s.PID, Err: s.Err, ExitCode: s.ExitCode, Timestamp: e.cfg.Now().UTC(), Sandbox: sb.path}
		if s.State != api.TaskStarting {
			sb.settled()
		}
	})
	defer sb.settled()
	e.mu.Lock()
	shuttingDown := e.ctx.Err() != nil
	if e.boxes[c.Task.ID] == sb {
		e.removeSandbox(c, sb)
		if !shuttingDown {
			c.Run = false
		}
		_ = e.saveLocked()
		if !shuttingDown {
			e.syncRulesLocked(e.ctx)
		}
	}
	remove := c.Task.Standalone.AutoRemove && !shuttingDown && slices.Contains(e.st.Containers, c)
	if remove {
		e.forgetLocked(c)
		_ = e.saveLocked()
		e.log.Info("container removed (--rm)", "container", c.Task.Standalone.Name)
	}
	e.mu.Unlock()
	close(sb.done)
}

// removeSandbox undoes startLocked; each step tolerates absence.
func (e *Engine) removeSandbox(c *container, sb *sandbox) {
	if sb.res != nil {
		if err := sb.res.Close(); err != nil {
			e.log.Warn("close resolver", "container", c.Task.Standalone.Name, "err", err)
		}
		sb.res = nil
	}
	for _, veth := range sb.veths {
		if err := e.cfg.Kernel.RemoveLink("", veth); err != nil {
			e.log.Warn("remove veth", "container", c.Task.Standalone.Name, "link", veth, "err", err)
		}
	}
	if err := e.cfg.Kernel.RemoveNS(sb.path); err != nil {
		e.log.Warn("remove sandbox", "container", c.Task.Standalone.Name, "err", err)
	}
	if e.boxes[c.Task.ID] == sb {
		delete(e.boxes, c.Task.ID)
	}
}

// halt resolves ref, lets prepare see the container (and refuse) under
// the lock, then marks it not to run and stops its process, waiting for
// its sandbox to go. On success it returns with e.mu held.
func (e *Engine) halt(ref string, prepare func(c *container, running bool) error) (*container, error) {
	e.mu.Lock()
	c, err := e.resolveLocked(ref)
	if err == nil {
		err = prepare(c, e.boxes[c.Task.ID] != nil)
	}
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	c.Run = false
	sb := e.boxes[c.Task.ID]
	e.mu.Unlock()
	if sb != nil {
		sb.cancel()
		<-sb.done
	}
	e.mu.Lock()
	return c, nil
}

// Stop stops a running container; exitCode, from a foreground run, is
// the status its command ended with.
func (e *Engine) Stop(ref string, exitCode *int) (api.Task, error) {
	c, err := e.halt(ref, func(c *container, _ bool) error {
		if exitCode != nil {
			code := *exitCode
			c.Task.Standalone.ExitCode = &code
		}
		return nil
	})
	if err != nil {
		return api.Task{}, err
	}
	defer e.mu.Unlock()
	_ = e.saveLocked()
	return e.viewLocked(c), nil
}

// Start starts a stopped container again, on the addresses it kept.
func (e *Engine) Start(ref string) (api.Task, error) {
	c, sb, err := e.start(ref)
	if err != nil {
		return api.Task{}, err
	}
	return e.settle(c, sb), nil
}

func (e *Engine) start(ref string) (*container, *sandbox, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return nil, nil, err
	}
	if sb := e.boxes[c.Task.ID]; sb != nil {
		return c, sb, nil
	}
	c.Task.Standalone.ExitCode = nil
	if err := e.startLocked(e.ctx, c); err != nil {
		return nil, nil, fmt.Errorf("start container %s: %w", c.Task.Name(), err)
	}
	_ = e.saveLocked()
	e.syncRulesLocked(e.ctx)
	return c, e.boxes[c.Task.ID], nil
}

// Remove removes a container; a running one only with force, which
// stops it first.
func (e *Engine) Remove(ref string, force bool) error {
	c, err := e.halt(ref, func(c *container, running bool) error {
		if running && !force {
			return api.Conflict("You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.Task.ContainerID())
		}
		c.Task.Standalone.AutoRemove = false // removed here, not by the supervisor
		return nil
	})
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	e.forgetLocked(c)
	e.log.Info("container removed", "container", c.Task.Standalone.Name)
	if e.ctx != nil {
		e.syncRulesLocked(e.ctx)
	}
	return e.saveLocked()
}
