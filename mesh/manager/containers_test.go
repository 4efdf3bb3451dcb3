package manager

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/records"
)

// newContainerCluster is the fake manager with an attachable overlay
// (ovnet, 10.0.0.0/24), a plain one (plain) and a service on ovnet.
func newContainerCluster(t *testing.T) *fakeManager {
	t.Helper()
	d := newFakeManager(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ovnet", Attachable: true, Subnet: "10.0.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "plain"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "www", Image: "whoami", Replicas: replicas(1),
		Networks: []api.NetworkAttachment{{Target: "ovnet"}}}); err != nil {
		t.Fatal(err)
	}
	return d
}

func ovRun(name string, mod ...func(*api.ContainerCreate)) api.ContainerCreate {
	req := api.ContainerCreate{Name: name, Image: "alpine", Cmd: []string{"sleep", "1000"},
		Networks: []api.ContainerAttach{{Network: "ovnet", Aliases: []string{"box"}}}}
	for _, m := range mod {
		m(&req)
	}
	return req
}

// TestRunContainerRefusals: every bad request is refused with its one
// line and changes nothing.
func TestRunContainerRefusals(t *testing.T) {
	d := newContainerCluster(t)
	if _, err := d.RunContainer(d.ctx, "nnode2", ovRun("box1", func(r *api.ContainerCreate) {
		r.Networks[0].IP = "10.0.0.50"
		r.Publish = []api.ContainerPort{{Proto: api.ProtoTCP, Port: 80, HostPort: 8080}}
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateService(d.ctx, api.ServiceCreate{Name: "pub", Image: "whoami", Replicas: replicas(1),
		Ports: []api.PortConfig{{PublishedPort: 8888, TargetPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	publish := func(proto string, host uint16) func(*api.ContainerCreate) {
		return func(r *api.ContainerCreate) {
			r.Publish = []api.ContainerPort{{Proto: proto, Port: 80, HostPort: host}}
		}
	}
	tests := []struct {
		name, node string
		req        api.ContainerCreate
		want       string
	}{
		{"not attachable", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].Network = "plain" }),
			"Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable"},
		{"ingress", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].Network = "ingress" }), "network ingress not manually attachable"},
		{"no network", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks = nil }), "needs a swarm network"},
		{"unknown network", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].Network = "nope" }), "not found"},
		{"twice", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks = append(r.Networks, r.Networks[0]) }), "already attached"},
		{"name taken on the node", "nnode2", ovRun("box1"), `The container name "/box1" is already in use`},
		{"bad name", "nnode2", ovRun("/c2"), "Invalid container name"},
		{"unknown image", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Image = "nosuchimage" }), "nosuchimage"},
		{"ip outside", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.9.0.5" }), "does not belong"},
		{"ip taken", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.50" }), "Address already in use: 10.0.0.50"},
		{"ip garbage", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].IP = "x" }), "invalid IPv4 address"},
		{"bad alias", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Networks[0].Aliases = []string{"-x"} }), "invalid alias"},
		{"-P not expanded", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.PublishAll = true }), "-P is expanded by the container's node"},
		{"host port of another container", "nnode2", ovRun("c2", publish(api.ProtoTCP, 8080)), "Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"host port of a service", "nnode3", ovRun("c2", publish(api.ProtoTCP, 8888)), "Bind for 0.0.0.0:8888 failed: port is already allocated"},
		{"host port of meshd", "nnode2", ovRun("c2", publish(api.ProtoUDP, 4789)), "port 4789/udp is reserved for meshd"},
		{"no host port", "nnode2", ovRun("c2", publish(api.ProtoTCP, 0)), "the host and container ports must be 1-65535"},
		{"bad protocol", "nnode2", ovRun("c2", publish("sctp", 9000)), "invalid protocol"},
		{"too many args", "nnode2", ovRun("c2", func(r *api.ContainerCreate) { r.Cmd = make([]string, api.MaxArgs+1) }), "too many arguments"},
		{"unknown node", "nope", ovRun("c2"), "not part of the swarm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.RunContainer(d.ctx, tt.node, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("a refused run changed the state:\n%s", diff)
			}
		})
	}
	// Another node may use the name: names are the node's, as docker's.
	if _, err := d.RunContainer(d.ctx, "nnode3", ovRun("box1")); err != nil {
		t.Errorf("the same name on another node: %v", err)
	}
}

// TestContainerLifecycle: run gives the container an address and its
// node an LB address; stop keeps the addresses, start makes a new task on
// them, rm gives them back, all on the node that asked only.
func TestContainerLifecycle(t *testing.T) {
	d := newContainerCluster(t)
	ovID, _ := d.store.Read().NetworkID("ovnet")
	c, err := d.RunContainer(d.ctx, "nnode3", ovRun("box1", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.77" }))
	if err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	got := st.Tasks[c.ID]
	if got.ServiceID != "" || got.Standalone == nil || got.NodeID != "nnode3" || got.DesiredState != api.TaskRunning ||
		len(got.Networks) != 1 || got.Networks[0].Addr != "10.0.0.77/24" || got.Networks[0].Aliases[0] != "box" {
		t.Fatalf("container task: %+v", got)
	}
	if _, ok := st.Networks[ovID].LBAddrs["nnode3"]; !ok {
		t.Errorf("node3 got no LB address on ovnet: %v", st.Networks[ovID].LBAddrs)
	}
	// Only its node sees it.
	for _, err := range []error{
		d.StopContainer(d.ctx, "nnode2", "box1", nil),
		d.RemoveContainer(d.ctx, "nnode2", "box1", true),
	} {
		if err == nil || !strings.Contains(err.Error(), "No such container: box1") {
			t.Errorf("another node's call: %v, want No such container", err)
		}
	}
	if err := d.RemoveContainer(d.ctx, "nnode3", "box1", false); err == nil || !strings.Contains(err.Error(), "You cannot remove a running container") {
		t.Errorf("rm without -f of a running container: %v", err)
	}
	ended, err := d.RunContainer(d.ctx, "nnode3", ovRun("ended"))
	if err != nil {
		t.Fatal(err)
	}
	if err := records.PutTaskStatus(d.db, ended.ID, api.TaskStatus{State: api.TaskFailed}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveContainer(d.ctx, "nnode3", "ended", false); err != nil {
		t.Errorf("rm without -f of a container whose process ended, before the sync: %v", err)
	}
	if err := d.StopContainer(d.ctx, "nnode3", "box1", new(int(3))); err != nil {
		t.Fatal(err)
	}
	stopped := d.store.Snapshot().Tasks[c.ID]
	if stopped.DesiredState != api.TaskShutdown || stopped.Networks[0].Addr != "10.0.0.77/24" || *stopped.Standalone.ExitCode != 3 {
		t.Errorf("stopped: %+v", stopped)
	}
	if code, ok := api.ExitCode(stopped.Status); !ok || code != 3 {
		t.Errorf("a foreground run's status 3 is not the stopped container's (%+v)", stopped.Status)
	}
	if _, err := d.RunContainer(d.ctx, "nnode2", ovRun("c9", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.77" })); err == nil {
		t.Errorf("a stopped container's address was given away")
	}
	started, err := d.StartContainer(d.ctx, "nnode3", "box1")
	if err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	if _, ok := st.Tasks[c.ID]; ok || started.ID == c.ID || !st.Tasks[started.ID].Current() ||
		st.Tasks[started.ID].Networks[0].Addr != "10.0.0.77/24" || st.Tasks[started.ID].Standalone.ExitCode != nil {
		t.Errorf("start: old kept %v, new %+v", ok, st.Tasks[started.ID])
	}
	// A new task, the same container, as docker start keeps its ID.
	if started.ContainerID() != c.ContainerID() {
		t.Errorf("start changed the container ID: %s, was %s", started.ContainerID(), c.ContainerID())
	}
	if again, err := d.StartContainer(d.ctx, "nnode3", c.ContainerID()); err != nil || again.ID != started.ID {
		t.Errorf("start by the container ID: %+v, %v", again, err)
	}
	if err := d.RemoveContainer(d.ctx, "nnode3", "box1", true); err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	if len(st.Tasks) != 1 {
		t.Errorf("tasks after rm: %d, want the service's 1", len(st.Tasks))
	}
	if _, ok := st.Networks[ovID].LBAddrs["nnode3"]; ok && !runsServiceTask(st, "nnode3") {
		t.Errorf("node3 kept its LB address on ovnet")
	}
	if _, err := d.RunContainer(d.ctx, "nnode2", ovRun("c9", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.77" })); err != nil {
		t.Errorf("the removed container's address: %v", err)
	}
}

func runsServiceTask(st State, node string) bool {
	for _, t := range st.Tasks {
		if t.NodeID == node && t.ServiceID != "" {
			return true
		}
	}
	return false
}

// TestContainersAreNeverScheduled: a container whose process ended is
// stopped (removed with --rm), never restarted; a Down or drained node
// keeps its containers; a removed node takes them; a network in use by
// one is not removed.
func TestContainersAreNeverScheduled(t *testing.T) {
	d := newContainerCluster(t)
	c1, err := d.RunContainer(d.ctx, "nnode2", ovRun("box1"))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := d.RunContainer(d.ctx, "nnode2", ovRun("rm", func(r *api.ContainerCreate) { r.AutoRemove = true }))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, id := range []string{c1.ID, rm.ID} {
		if err := records.PutTaskStatus(d.db, id, api.TaskStatus{State: api.TaskComplete}, now); err != nil {
			t.Fatal(err)
		}
	}
	d.syncNodes(now)
	st := d.store.Snapshot()
	if got := st.Tasks[c1.ID]; got.DesiredState != api.TaskShutdown || got.Status.State != api.TaskComplete || len(got.Networks) != 1 {
		t.Errorf("ended container: desired %s, status %s, networks %v", got.DesiredState, got.Status.State, got.Networks)
	}
	if _, ok := st.Tasks[rm.ID]; ok {
		t.Errorf("ended --rm container kept")
	}
	if got := nodeContainers(&st, "nnode2"); len(got) != 1 {
		t.Errorf("containers of node2 after the sync: %d, want 1 (nothing restarted)", len(got))
	}

	c2, err := d.RunContainer(d.ctx, "nnode2", ovRun("c2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateNode(d.ctx, "node2", api.NodeUpdate{Availability: api.AvailabilityDrain}); err != nil {
		t.Fatal(err)
	}
	down := time.Now().UTC()
	_, _ = d.store.Update(func(s *State) error {
		n := s.Nodes["nnode2"]
		n.Status, n.UpdatedAt = api.StatusDown, down
		s.Nodes["nnode2"] = n
		return rescheduleDown(s, down.Add(time.Hour), time.Second)
	})
	st = d.store.Snapshot()
	if got := st.Tasks[c2.ID]; !got.Current() || got.NodeID != "nnode2" {
		t.Errorf("a drained, down node's container: %+v", got)
	}
	if at := nextDue(st, down.Add(time.Hour), time.Second); !at.IsZero() {
		t.Errorf("a down node with a container only is due at %v, want never", at)
	}
	if err := d.RemoveService(d.ctx, "www"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(d.ctx, "ovnet"); err == nil || !strings.Contains(err.Error(), "has active endpoints") {
		t.Errorf("rm of a network a container uses: %v", err)
	}
	if err := d.RemoveNode(d.ctx, "node2", true); err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	if got := nodeContainers(&st, "nnode2"); len(got) != 0 {
		t.Errorf("a removed node's containers kept: %d", len(got))
	}
}

// TestConnectContainer: connect and disconnect change a container's
// networks in place (the same task): connect allocates an address on the
// new network and gives the node an LB address there, disconnect gives
// both back and keeps the rest; every refusal is one line and changes
// nothing.
func TestConnectContainer(t *testing.T) {
	d := newContainerCluster(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ov2", Attachable: true, Subnet: "10.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	c, err := d.RunContainer(d.ctx, "nnode3", ovRun("box1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.RunContainer(d.ctx, "nnode2", ovRun("other", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.60" })); err != nil {
		t.Fatal(err)
	}
	ovID, _ := d.store.Read().NetworkID("ovnet")
	ov2ID, _ := d.store.Read().NetworkID("ov2")
	lbBefore := d.store.Snapshot().Networks[ovID].LBAddrs["nnode3"]

	refusals := []struct {
		name, node, ref string
		a               api.ContainerAttach
		want            string
	}{
		{"another node's", "nnode2", "box1", api.ContainerAttach{Network: "ov2"}, "No such container: box1"},
		{"a service task", "nnode3", "www", api.ContainerAttach{Network: "ov2"}, "No such container"},
		{"unknown container", "nnode3", "nope", api.ContainerAttach{Network: "ov2"}, "No such container: nope"},
		{"unknown network", "nnode3", "box1", api.ContainerAttach{Network: "nope"}, "not found"},
		{"not attachable", "nnode3", "box1", api.ContainerAttach{Network: "plain"}, "network plain not manually attachable"},
		{"ingress", "nnode3", "box1", api.ContainerAttach{Network: "ingress"}, "Could not attach to network ingress: rpc error: code = PermissionDenied desc = network ingress not manually attachable"},
		{"already attached", "nnode3", "box1", api.ContainerAttach{Network: "ovnet"}, "already attached to network ovnet"},
		{"ip outside", "nnode3", "box1", api.ContainerAttach{Network: "ov2", IP: "10.0.0.9"}, "does not belong"},
		{"ip garbage", "nnode3", "box1", api.ContainerAttach{Network: "ov2", IP: "x"}, "invalid IPv4 address"},
		{"bad alias", "nnode3", "box1", api.ContainerAttach{Network: "ov2", Aliases: []string{"-x"}}, "invalid alias"},
		{"too many aliases", "nnode3", "box1", api.ContainerAttach{Network: "ov2", Aliases: make([]string, api.MaxAliases+1)}, "aliases"},
		{"long network", "nnode3", "box1", api.ContainerAttach{Network: strings.Repeat("n", 300)}, "network"},
	}
	for _, tt := range refusals {
		t.Run("connect "+tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.ConnectContainer(d.ctx, tt.node, tt.ref, tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("a refused connect changed the state:\n%s", diff)
			}
		})
	}

	got, err := d.ConnectContainer(d.ctx, "nnode3", "box1", api.ContainerAttach{Network: "ov2", Aliases: []string{"box2"}, IP: "10.0.2.40"})
	if err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	task, ok := st.Tasks[c.ID]
	if !ok || !task.Current() || len(task.Networks) != 2 || got.ID != c.ID {
		t.Fatalf("connect did not change the task in place: %+v", task)
	}
	if n := task.Networks[1]; n.NetworkID != ov2ID || n.Addr != "10.0.2.40/24" || n.Aliases[0] != "box2" || n.MAC == "" {
		t.Errorf("new attachment: %+v", n)
	}
	if task.Networks[0].NetworkID != c.Networks[0].NetworkID || task.Networks[0].Addr != c.Networks[0].Addr {
		t.Errorf("the first network changed: %+v, was %+v", task.Networks[0], c.Networks[0])
	}
	if _, ok := st.Networks[ov2ID].LBAddrs["nnode3"]; !ok {
		t.Errorf("node3 got no LB address on ov2: %v", st.Networks[ov2ID].LBAddrs)
	}
	if st.Networks[ovID].LBAddrs["nnode3"] != lbBefore {
		t.Errorf("node3's LB address on ovnet changed: %s, was %s", st.Networks[ovID].LBAddrs["nnode3"], lbBefore)
	}
	if _, err := d.ConnectContainer(d.ctx, "nnode2", "other", api.ContainerAttach{Network: "ov2", IP: "10.0.2.40"}); err == nil ||
		!strings.Contains(err.Error(), "Address already in use: 10.0.2.40") {
		t.Errorf("a connected container's address was given away: %v", err)
	}

	disconnects := []struct {
		name, node, ref, network, want string
	}{
		{"another node's", "nnode2", "box1", "ov2", "No such container: box1"},
		{"unknown network", "nnode3", "box1", "nope", "not found"},
		{"not connected", "nnode3", "other", "nope", "No such container"},
		{"not on it", "nnode2", "other", "ov2", "is not connected to network ov2"},
		{"long network", "nnode3", "box1", strings.Repeat("n", 300), "too long"},
	}
	for _, tt := range disconnects {
		t.Run("disconnect "+tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.DisconnectContainer(d.ctx, tt.node, tt.ref, tt.network)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("a refused disconnect changed the state:\n%s", diff)
			}
		})
	}

	if _, err := d.DisconnectContainer(d.ctx, "nnode3", "box1", ov2ID[:12]); err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	task = st.Tasks[c.ID]
	if !task.Current() || len(task.Networks) != 1 || task.Networks[0].NetworkID != ovID {
		t.Errorf("after disconnect: %+v", task.Networks)
	}
	if _, ok := st.Networks[ov2ID].LBAddrs["nnode3"]; ok {
		t.Errorf("node3 kept its LB address on ov2, with no container there")
	}
	if st.Networks[ovID].LBAddrs["nnode3"] != lbBefore {
		t.Errorf("node3's LB address on ovnet changed: %s, was %s", st.Networks[ovID].LBAddrs["nnode3"], lbBefore)
	}
	if _, err := d.ConnectContainer(d.ctx, "nnode2", "other", api.ContainerAttach{Network: "ov2", IP: "10.0.2.40"}); err != nil {
		t.Errorf("the disconnected address was not given back: %v", err)
	}
	// A stopped container keeps its networks for its start, as docker's.
	if err := d.StopContainer(d.ctx, "nnode3", "box1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ConnectContainer(d.ctx, "nnode3", "box1", api.ContainerAttach{Network: "ov2"}); err != nil {
		t.Fatal(err)
	}
	started, err := d.StartContainer(d.ctx, "nnode3", "box1")
	if err != nil {
		t.Fatal(err)
	}
	if len(started.Networks) != 2 || started.Networks[1].NetworkID != ov2ID {
		t.Errorf("start after a connect while stopped: %+v", started.Networks)
	}
	// A container may leave its last network, as docker's: it keeps
	// running on its loopback only, its addresses given back.
	for _, network := range []string{"ovnet", "ov2"} {
		if _, err := d.DisconnectContainer(d.ctx, "nnode2", "other", network); err != nil {
			t.Fatalf("disconnect other from %s: %v", network, err)
		}
	}
	for _, c := range nodeContainers(ptr(d.store.Snapshot()), "nnode2") {
		if c.Standalone.Name == "other" && (len(c.Networks) != 0 || !c.Current()) {
			t.Errorf("other after leaving every network: %+v", c)
		}
	}
	if _, err := d.RunContainer(d.ctx, "nnode3", ovRun("c60", func(r *api.ContainerCreate) { r.Networks[0].IP = "10.0.0.60" })); err != nil {
		t.Errorf("other's last address was not given back: %v", err)
	}
}

// A container's host port is its node's: another node's container may
// publish the same one, and no service may publish it (ingress publishes
// on every node).
func TestContainerHostPorts(t *testing.T) {
	d := newContainerCluster(t)
	on8080 := func(r *api.ContainerCreate) {
		r.Publish = []api.ContainerPort{{Proto: api.ProtoTCP, Port: 80, HostPort: 8080}}
	}
	if _, err := d.RunContainer(d.ctx, "nnode2", ovRun("box1", on8080)); err != nil {
		t.Fatal(err)
	}
	c3, err := d.RunContainer(d.ctx, "nnode3", ovRun("c3", on8080))
	if err != nil {
		t.Fatalf("the same host port on another node: %v", err)
	}
	if got := c3.Standalone.Ports; len(got) != 1 || got[0].HostPort != 8080 || got[0].Port != 80 {
		t.Errorf("c3's ports: %+v", got)
	}
	_, err = d.CreateService(d.ctx, api.ServiceCreate{Name: "pub", Image: "whoami", Replicas: replicas(1),
		Ports: []api.PortConfig{{PublishedPort: 8080, TargetPort: 80}}})
	if err == nil || !regexp.MustCompile(`^port 8080/tcp is already published by container (box1|c3) on node[23]$`).MatchString(err.Error()) {
		t.Errorf("service publishing a container's host port: %v", err)
	}
}

// TestConnectServiceTask: network connect and disconnect on a service's
// running task, as docker does on the task's node: an attachable overlay
// joins in place with an address allocated here, marked as connect's, so
// that the service does not see its task as outdated; the service's own
// networks and the ingress are refused with Docker's words and change
// nothing; the address goes back at a disconnect and at the task's end.
func TestConnectServiceTask(t *testing.T) {
	d := newContainerCluster(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ov2", Attachable: true, Subnet: "10.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	st := d.store.Snapshot()
	id, err := st.ServiceID("www")
	if err != nil {
		t.Fatal(err)
	}
	svc := st.Services[id]
	task := d.slotOf(svc, 1)[0]
	other := "nnode2"
	if task.NodeID == other {
		other = "nnode3"
	}
	name := "www.1." + task.ID
	refusals := []struct {
		name, node, ref string
		a               api.ContainerAttach
		want            string
	}{
		{"another node's", other, "www.1", api.ContainerAttach{Network: "ov2"}, "No such container: www.1"},
		{"its service's network", task.NodeID, "www.1", api.ContainerAttach{Network: "ovnet"}, "endpoint with name " + name + " already exists in network ovnet"},
		{"not attachable", task.NodeID, "www.1", api.ContainerAttach{Network: "plain"}, "Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable"},
		{"ingress", task.NodeID, name, api.ContainerAttach{Network: "ingress"}, "network ingress not manually attachable"},
	}
	for _, tt := range refusals {
		t.Run("connect "+tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.ConnectContainer(d.ctx, tt.node, tt.ref, tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("a refused connect changed the state:\n%s", diff)
			}
		})
	}

	got, err := d.ConnectContainer(d.ctx, task.NodeID, "www.1", api.ContainerAttach{Network: "ov2", Aliases: []string{"w"}, IP: "10.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	st = d.store.Snapshot()
	now := st.Tasks[task.ID]
	if got.ID != task.ID || !now.Current() || len(now.Networks) != 2 {
		t.Fatalf("connect did not change the task in place: %+v", now)
	}
	if tn := now.Networks[1]; tn.NetworkName != "ov2" || tn.Addr != "10.0.2.9/24" || !tn.Connected || tn.Aliases[0] != "w" || now.Networks[0].Connected {
		t.Errorf("attachments after connect: %+v", now.Networks)
	}
	if hasOutdated(&st, svc) {
		t.Errorf("a connected task counts as outdated: its service would replace it")
	}

	if _, err := d.DisconnectContainer(d.ctx, task.NodeID, "www.1", "ovnet"); err == nil ||
		!strings.Contains(err.Error(), "use meshctl service update --network-rm ovnet www") {
		t.Errorf("disconnect from the service's network: got %v", err)
	}
	if _, err := d.DisconnectContainer(d.ctx, task.NodeID, "www.1", "ov2"); err != nil {
		t.Fatal(err)
	}
	if n := d.store.Snapshot().Tasks[task.ID].Networks; len(n) != 1 || n[0].NetworkName != "ovnet" {
		t.Errorf("after disconnect: %+v", n)
	}
	if _, err := d.RunContainer(d.ctx, other, ovRun("c9", func(r *api.ContainerCreate) { r.Networks[0] = api.ContainerAttach{Network: "ov2", IP: "10.0.2.9"} })); err != nil {
		t.Errorf("the disconnected address was not given back: %v", err)
	}

	// A connected task that ends gives its address back with the others.
	if _, err := d.ConnectContainer(d.ctx, task.NodeID, "www.1", api.ContainerAttach{Network: "ov2", IP: "10.0.2.10"}); err != nil {
		t.Fatal(err)
	}
	d.end(t, svc, 1, api.TaskFailed, "task: non-zero exit (1)", time.Now())
	if _, err := d.RunContainer(d.ctx, other, ovRun("c10", func(r *api.ContainerCreate) { r.Networks[0] = api.ContainerAttach{Network: "ov2", IP: "10.0.2.10"} })); err != nil {
		t.Errorf("the ended task's connected address was not given back: %v", err)
	}
}

// A node's engine container (a bridge container) on attachable overlays:
// its first connect makes its attachment task, which holds its addresses
// and is never scheduled; its last disconnect removes it; a bad
// description is refused and changes nothing.
func TestConnectEngineContainer(t *testing.T) {
	d := newContainerCluster(t)
	if _, err := d.CreateNetwork(d.ctx, api.NetworkCreate{Name: "ov2", Attachable: true, Subnet: "10.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 32)
	local := &api.LocalContainer{ID: id, Name: "web"}
	if _, err := d.RunContainer(d.ctx, "nnode3", ovRun("taken")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ref  string
		l    *api.LocalContainer
		want string
	}{
		{"no description", id, nil, "No such container"},
		{"a short ID", "abab", &api.LocalContainer{ID: "abab", Name: "web"}, "64-hex"},
		{"no name", id, &api.LocalContainer{ID: id}, "64-hex ID and a name"},
		{"another ID than the ref", strings.Repeat("cd", 32), local, "No such container"},
		{"a name in use on the node", id, &api.LocalContainer{ID: id, Name: "taken"}, `The container name "/taken" is already in use`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := d.store.Snapshot()
			_, err := d.ConnectContainer(d.ctx, "nnode3", tt.ref, api.ContainerAttach{Network: "ov2", Local: tt.l})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if diff := stateDiff(before, d.store.Snapshot()); diff != "" {
				t.Errorf("a refused connect changed the state:\n%s", diff)
			}
		})
	}
	got, err := d.ConnectContainer(d.ctx, "nnode3", id, api.ContainerAttach{Network: "ov2", Aliases: []string{"w"}, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsAttachment() || got.ContainerID() != id || got.Standalone.Name != "web" || len(got.Networks) != 1 || got.Networks[0].NetworkName != "ov2" {
		t.Fatalf("attachment task: %+v", got)
	}
	again, err := d.ConnectContainer(d.ctx, "nnode3", id, api.ContainerAttach{Network: "ovnet", Local: local})
	if err != nil || again.ID != got.ID || len(again.Networks) != 2 {
		t.Fatalf("second overlay: %v %+v, want the same task on two networks", err, again)
	}
	if _, err := d.RunContainer(d.ctx, "nnode3", ovRun("web")); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("run --name web beside the attached engine container: %v, want the name refused", err)
	}
	for _, network := range []string{"ov2", "ovnet"} {
		if _, err := d.DisconnectContainer(d.ctx, "nnode3", id, network); err != nil {
			t.Fatalf("disconnect from %s: %v", network, err)
		}
	}
	if _, ok := d.store.Snapshot().Tasks[got.ID]; ok {
		t.Errorf("the attachment task outlived its last network")
	}
	// Its addresses were given back.
	if _, err := d.ConnectContainer(d.ctx, "nnode3", id, api.ContainerAttach{Network: "ov2", IP: api.AddrOf(got.Networks[0].Addr).String(), Local: local}); err != nil {
		t.Errorf("connect again at the same address: %v", err)
	}
}
