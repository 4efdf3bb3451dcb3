package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// TestGolden runs each command's runX against the fixtures and compares
// what it prints with testdata/<name>.golden; "go test ./cmd/meshctl
// -update" rewrites them.
func TestGolden(t *testing.T) {
	fake := newFakeAPI()
	iptablesNode := newFakeAPI()
	iptablesNode.lbTablesFunc = func() ([]api.LBTable, error) {
		return []api.LBTable{
			{Sandbox: "ingress_sbox", Network: "ingress", DataPlane: "iptables", FlowOffload: "on (eth0, eth1)",
				Table: "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
					"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nFWM  256 rr\n" +
					"  -> 10.255.0.5:0                 Masq    1      0          0\n"},
			{Sandbox: "lb_kq0b2hbd7c", Network: "ovnet", DataPlane: "iptables",
				FlowOffload: `unavailable: the kernel has no flowtables: nft -c in "/var/run/meshd/netns/lb_kq0b2hbd7c": exit status 1: Error: Could not process rule: No such file or directory`,
				Table: "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
					"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"},
		}, nil
	}
	clock := func() time.Time { return testNow }
	tests := []struct {
		name string
		run  func(ctx context.Context, out io.Writer) error
	}{
		{"node-ls", func(ctx context.Context, out io.Writer) error { return runNodeLs(ctx, fake, out, listOptions{}) }},
		{"node-ls-quiet", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{quiet: true})
		}},
		{"node-ls-format", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: "{{.Hostname}}: {{.Status}} {{.DataPlane}}"})
		}},
		{"node-ls-filter-role", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{filter: []string{"role=worker"}})
		}},
		{"node-ls-json", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, fake, out, listOptions{format: "json"})
		}},
		{"info", func(ctx context.Context, out io.Writer) error { return runInfo(ctx, fake, out, out, infoOptions{}) }},
		{"info-worker", func(ctx context.Context, out io.Writer) error {
			return runInfo(ctx, &fakeAPI{infoFunc: func() (api.Info, error) { return workerInfo, nil }}, out, out, infoOptions{})
		}},
		{"info-inactive", func(ctx context.Context, out io.Writer) error {
			return runInfo(ctx, &fakeAPI{infoFunc: func() (api.Info, error) { return inactiveInfo, nil }}, out, out, infoOptions{})
		}},
		{"info-format", func(ctx context.Context, out io.Writer) error {
			return runInfo(ctx, fake, out, out, infoOptions{format: "{{.LocalNodeState}} {{.ControlAvailable}} {{.Leader}} {{len .Managers}}"})
		}},
		{"node-ls-managers", func(ctx context.Context, out io.Writer) error {
			return runNodeLs(ctx, &fakeAPI{nodesFunc: func() ([]api.Node, error) { return managerNodes, nil }}, out, listOptions{})
		}},
		{"node-inspect", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Node, out, inspectOptions{refs: []string{"node1", "w1iw"}})
		}},
		{"node-inspect-format", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Node, out, inspectOptions{format: "{{.ID}} {{.Addr}} {{.Role}}", refs: []string{"node1", "node3"}})
		}},
		{"network-ls", func(ctx context.Context, out io.Writer) error { return runNetworkLs(ctx, fake, out, listOptions{}) }},
		{"network-ls-filter", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{filter: []string{"name=ov", "name=back"}})
		}},
		{"network-ls-filter-driver", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{filter: []string{"driver=overlay", "scope=swarm", "name=^in", "name=end$"}})
		}},
		{"network-ls-quiet", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{quiet: true})
		}},
		{"network-ls-json", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{format: "json", filter: []string{"name=ingress"}})
		}},
		{"network-ls-filter-local", func(ctx context.Context, out io.Writer) error {
			return runNetworkLs(ctx, fake, out, listOptions{filter: []string{"scope=local", "driver=bridge"}})
		}},
		{"network-inspect", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Network, out, inspectOptions{refs: []string{"ovnet", "ingress", "backend"}})
		}},
		{"network-inspect-local", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Network, out, inspectOptions{refs: []string{"mesh_gwbridge", "host", "none"}})
		}},
		// The tutorials' templates: Go's map print and JSON.
		{"network-inspect-format", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Network, out, inspectOptions{format: "{{.Name}} {{.Id}} {{.VNI}} {{ .Containers }}", refs: []string{"ovnet", "mesh_gwbridge"}})
		}},
		{"network-inspect-format-json", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, fake.Network, out, inspectOptions{format: "{{json .Containers}}", refs: []string{"ingress"}})
		}},
		{"service-ls", func(ctx context.Context, out io.Writer) error { return runServiceLs(ctx, fake, out, listOptions{}) }},
		{"service-ls-quiet", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{quiet: true, filter: []string{"name=w", "name=i"}})
		}},
		{"service-ls-json", func(ctx context.Context, out io.Writer) error {
			return runServiceLs(ctx, fake, out, listOptions{format: "json"})
		}},
		{"service-ps", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock})
		}},
		{"service-ps-filter", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", now: clock, list: listOptions{filter: []string{"name=www.1", "node=node1"}}})
		}},
		{"service-ps-host-command", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "dns", now: clock})
		}},
		{"service-ps-quiet", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", list: listOptions{quiet: true}})
		}},
		{"service-ps-json", func(ctx context.Context, out io.Writer) error {
			return runServicePs(ctx, fake, out, servicePsOptions{service: "www", list: listOptions{format: "json"}})
		}},
		{"service-inspect", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, asResource(fake.Service), out, inspectOptions{refs: []string{"www", "dns"}})
		}},
		{"service-inspect-json", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, asResource(fake.Service), out, inspectOptions{format: "json", refs: []string{"www", "dns"}})
		}},
		{"service-inspect-template", func(ctx context.Context, out io.Writer) error {
			return runInspect(ctx, asResource(fake.Service), out, inspectOptions{format: "{{.Spec.Name}} {{.Spec.EndpointSpec.Mode}} {{json .Endpoint.VirtualIPs}} {{join .Spec.TaskTemplate.ContainerSpec.Args \" \"}} {{json .Spec.TaskTemplate.ContainerSpec.Command}}", refs: []string{"www", "dns"}})
		}},
		{"ps", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock}})
		}},
		{"ps-quiet", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{quiet: true}})
		}},
		{"ps-filter-status", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{now: clock, filter: []string{"status=created"}}})
		}},
		{"ps-format", func(ctx context.Context, out io.Writer) error {
			return runPs(ctx, fake, out, psOptions{listOptions: listOptions{format: "{{.Name}} {{.Hostname}} {{upper .Task.Status.State}}"}})
		}},
		{"lb-ls", func(ctx context.Context, out io.Writer) error { return runLBLs(ctx, fake, out, lbLsOptions{}) }},
		{"lb-ls-json", func(ctx context.Context, out io.Writer) error {
			return runLBLs(ctx, fake, out, lbLsOptions{format: "json"})
		}},
		// A node of the iptables plane: a flowtable in ingress_sbox, none
		// in lb_ where the kernel refused it.
		{"lb-ls-iptables", func(ctx context.Context, out io.Writer) error { return runLBLs(ctx, iptablesNode, out, lbLsOptions{}) }},
		{"lb-ls-flow-offload", func(ctx context.Context, out io.Writer) error {
			return runLBLs(ctx, iptablesNode, out, lbLsOptions{format: "{{.Sandbox}}: {{.FlowOffload}}"})
		}},
		{"ns-ls", func(ctx context.Context, out io.Writer) error { return runNsLs(ctx, fake, out) }},
		// node1's and node3's kernels, node2 not read; the cluster's services.
		{"graph-dot", func(ctx context.Context, out io.Writer) error {
			return runGraph(ctx, fake, graphSnapshots(), out, graphOptions{format: "dot"})
		}},
		{"graph-mermaid", func(ctx context.Context, out io.Writer) error {
			return runGraph(ctx, fake, graphSnapshots(), out, graphOptions{format: "mermaid"})
		}},
		{"images", func(_ context.Context, out io.Writer) error { return runImages(out, listOptions{}, nil) }},
		{"images-one-tag", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{}, []string{"docker.io/library/elasticsearch:2"})
		}},
		{"images-unknown", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{}, []string{"postgres"})
		}},
		{"images-filter-quiet", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{quiet: true, filter: []string{"reference=*/*"}}, nil)
		}},
		{"images-format", func(_ context.Context, out io.Writer) error {
			return runImages(out, listOptions{format: "table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}", noTrunc: true, filter: []string{"reference=redis"}}, nil)
		}},
		{"join-token", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, fake, out, joinTokenOptions{role: "worker"})
		}},
		{"join-token-manager", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, fake, out, joinTokenOptions{role: "manager"})
		}},
		{"join-token-rotate", func(ctx context.Context, out io.Writer) error {
			return runJoinToken(ctx, fake, out, joinTokenOptions{role: "worker", rotate: true})
		}},
		{"swarm-init", func(ctx context.Context, out io.Writer) error {
			return runSwarmInit(ctx, fake, out, swarmInitOptions{advertiseAddr: "192.168.33.10"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tt.run(context.Background(), &out); err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			golden(t, tt.name, out.String())
		})
	}
}

// golden compares got with testdata/<name>.golden.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), got)
}
