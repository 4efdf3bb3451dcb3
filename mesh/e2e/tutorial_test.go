package e2e

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The tutorials' own command lines, with docker typed as meshctl and
// /var/run/docker as /var/run/meshd, run in a shell on a lab node as a
// user types them. Each output is compared with the tutorial's on every
// field that is not an ID, an address or a time: those are patterns.

// Patterns for the fields that differ from one run to the next.
const (
	swarmID   = `[a-z0-9]{25}`      // a cluster object's full ID
	shortID   = `[a-z0-9]{12}`      // as ls and ps print it
	hex64     = `[0-9a-f]{64}`      // a container, endpoint or local network ID
	ingressIP = `10\.255\.\d+\.\d+` // on the default ingress network
	ago       = `(?:less than a second|\d+ seconds?|About a minute|\d+ minutes?) ago`
)

// sh runs a shell script on a node of the lab, as its user would, and
// fails the test if it fails.
func (l *testLab) sh(t *testing.T, node, script string) string {
	t.Helper()
	out, err := l.onNode(node, "sh", "-c", script)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", node, script, err, out)
	}
	return out
}

// matchLines checks that out has exactly the lines of want, in order,
// each a regular expression matched against the whole line with its
// trailing blanks cut.
func matchLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = regexp.MustCompile(`^` + want[i] + `$`).MatchString(strings.TrimRight(got[i], " "))
	}
	if !ok {
		t.Errorf("%s printed:\n%s\nwant lines matching:\n%s", what, out, strings.Join(want, "\n"))
	}
}

// row is a table row whose columns are split by runs of at least two
// blanks, as docker's tables are printed.
func row(cols ...string) string { return strings.Join(cols, ` {2,}`) }

// TestTutorial000 replays the French routing-mesh tutorial on its two
// nodes: networks, the www service, and the four recipes that find the
// namespaces of the ingress network, a task, the ovnet network and its
// load balancer.
func TestTutorial000(t *testing.T) {
	l := newLab(t, 2)

	matchLines(t, "network ls", l.sh(t, "node1", "meshctl network ls"),
		row("NETWORK ID", "NAME", "DRIVER", "SCOPE"),
		// bridge is docker's default bridge network, as the tutorial shows.
		row(`[0-9a-f]{12}`, "bridge", "bridge", "local"),
		row(`[0-9a-f]{12}`, "host", "host", "local"),
		row(shortID, "ingress", "overlay", "swarm"),
		row(`[0-9a-f]{12}`, "mesh_gwbridge", "bridge", "local"),
		row(`[0-9a-f]{12}`, "none", "null", "local"))

	matchLines(t, "network create", l.sh(t, "node1", "meshctl network create --driver overlay ovnet"), swarmID)
	matchLines(t, "network ls --filter", l.sh(t, "node1", "meshctl network ls --filter name=ovnet"),
		row("NETWORK ID", "NAME", "DRIVER", "SCOPE"),
		row(shortID, "ovnet", "overlay", "swarm"))

	out := l.sh(t, "node1", `meshctl service create \
  --name www \
  --replicas 2 \
  --network ovnet \
  --publish 8888:80 \
  nginx:1.14-alpine`)
	matchLines(t, "service create", out, swarmID, `overall progress: 2 out of 2 tasks`,
		`1/2: running   \[={50}>\]`, `2/2: running   \[={50}>\]`, `verify: Service converged`)

	// The scheduler spreads: one replica on each node.
	matchLines(t, "service ps", l.sh(t, "node1", "meshctl service ps www"),
		row("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"),
		row(shortID, `www\.1`, `nginx:1\.14-alpine`, `node[12]`, "Running", "Running "+ago),
		row(shortID, `www\.2`, `nginx:1\.14-alpine`, `node[12]`, "Running", "Running "+ago))
	nodes := l.sh(t, "node1", "meshctl service ps www --format '{{.Node}}' | sort | tr '\n' ' '")
	if nodes != "node1 node2 " {
		t.Errorf("www's tasks run on %q, want one on node1 and one on node2", nodes)
	}

	ingressID := strings.TrimSpace(l.sh(t, "node1", "meshctl network inspect -f '{{.Id}}' ingress"))
	ovnetID := strings.TrimSpace(l.sh(t, "node1", "meshctl network inspect -f '{{.Id}}' ovnet"))
	var svc []struct {
		Endpoint struct {
			VirtualIPs []struct{ NetworkID, Addr string }
		}
	}
	if err := json.Unmarshal([]byte(l.sh(t, "node1", "meshctl service inspect www")), &svc); err != nil || len(svc) != 1 {
		t.Fatalf("service inspect www: %v", err)
	}
	vips := svc[0].Endpoint.VirtualIPs
	if len(vips) != 2 || vips[0].NetworkID != ingressID || !regexp.MustCompile(`^`+ingressIP+`/16$`).MatchString(vips[0].Addr) ||
		vips[1].NetworkID != ovnetID || vips[1].Addr != "10.0.0.2/24" {
		t.Errorf("VirtualIPs %+v, want an ingress /16 address on %s, then 10.0.0.2/24 on %s", vips, ingressID, ovnetID)
	}

	t.Run("docker_gwbridge holds ingress-sbox", func(t *testing.T) {
		out := l.sh(t, "node1", "meshctl network inspect -f '{{ .Containers }}' docker_gwbridge")
		want := `ingress-sbox:{gateway_ingress-sbox ` + hex64 + ` 02:42:ac:12:00:02 172.18.0.2/16 }`
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("docker_gwbridge's Containers:\n%s\nwant %s", out, want)
		}
	})

	t.Run("the namespaces", func(t *testing.T) {
		// As the tutorial's "1-totcuhunqg 1-zmbsvp773j 32eeab89b26b
		// ingress_sbox lb_zmbsvp773": two overlays, a task, the ingress
		// sandbox, ovnet's load balancer.
		got := strings.Fields(l.sh(t, "node1", "ls /var/run/meshd/netns"))
		count := map[string]int{}
		for _, name := range got {
			for _, kind := range []string{`1-[a-z0-9]{10}`, `[0-9a-f]{12}`, `ingress_sbox`, `lb_[a-z0-9]{9}`} {
				if regexp.MustCompile(`^` + kind + `$`).MatchString(name) {
					count[kind]++
					break
				}
			}
		}
		if len(got) != 5 || count[`1-[a-z0-9]{10}`] != 2 || count[`[0-9a-f]{12}`] != 1 || count[`ingress_sbox`] != 1 || count[`lb_[a-z0-9]{9}`] != 1 {
			t.Errorf("ls /var/run/meshd/netns: %v, want two overlays 1-…, a task, ingress_sbox and lb_…", got)
		}
		matchLines(t, "network ls", l.sh(t, "node1", "meshctl network ls"),
			row("NETWORK ID", "NAME", "DRIVER", "SCOPE"),
			row(`[0-9a-f]{12}`, "bridge", "bridge", "local"),
			row(`[0-9a-f]{12}`, "host", "host", "local"),
			row(shortID, "ingress", "overlay", "swarm"),
			row(`[0-9a-f]{12}`, "mesh_gwbridge", "bridge", "local"),
			row(`[0-9a-f]{12}`, "none", "null", "local"),
			row(shortID, "ovnet", "overlay", "swarm"))
	})

	t.Run("ingress_sbox", func(t *testing.T) {
		out := l.sh(t, "node1", "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a")
		for _, want := range []string{
			`eth0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n\s+link/ether 02:42:0a:ff:00:02 .*\n\s+inet 10\.255\.0\.2/16 `,
			`inet ` + ingressIP + `/32 `,
			`eth1@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 .*\n\s+link/ether 02:42:ac:12:00:02 .*\n\s+inet 172\.18\.0\.2/16 `,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ip a in ingress_sbox lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("the ingress network's containers on each node", func(t *testing.T) {
		for _, node := range []string{"node1", "node2"} {
			var got map[string]struct{ Name, EndpointID, MacAddress, IPv4Address, IPv6Address string }
			out := l.sh(t, node, "meshctl network inspect -f '{{ json .Containers }}' ingress | jq .")
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("on %s: %v\n%s", node, err, out)
			}
			task := ""
			for key, c := range got {
				if key == "ingress-sbox" {
					continue
				}
				task = key
				if !regexp.MustCompile(`^`+hex64+`$`).MatchString(key) || !regexp.MustCompile(`^www\.[12]\.`+swarmID+`$`).MatchString(c.Name) ||
					!regexp.MustCompile(`^`+hex64+`$`).MatchString(c.EndpointID) || !regexp.MustCompile(`^02:42:0a:ff:`).MatchString(c.MacAddress) ||
					!regexp.MustCompile(`^`+ingressIP+`/16$`).MatchString(c.IPv4Address) || c.IPv6Address != "" {
					t.Errorf("on %s: container %s: %+v, want as the tutorial's www.1.w1iwcy57ihkjlbq7cqbtvm7g1 at 10.255.0.6/16", node, key, c)
				}
			}
			if len(got) != 2 || task == "" {
				t.Errorf("on %s: %d containers on ingress, want the node's www task and ingress-sbox:\n%s", node, len(got), out)
			}
		}
	})

	t.Run("NAMESPACE_INGRESS", func(t *testing.T) {
		out := l.sh(t, "node1", `NAMESPACE_INGRESS="1-$(meshctl network ls -f name=ingress -q | cut -c 1-10)"
nsenter --net=/var/run/meshd/netns/$NAMESPACE_INGRESS ip a`)
		for _, want := range []string{
			`br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n.*\n\s+inet 10\.255\.0\.1/16 `,
			`vxlan0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .* master br0 state UNKNOWN`,
			`veth\w+@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .* master br0 state UP`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ip a in the ingress network's namespace lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("NAMESPACE_CTN", func(t *testing.T) {
		// The first line is a cluster read, typed on the manager; the
		// tutorial types the others on node1 too, where www.1 runs: here
		// they go to www.1's node, wherever the scheduler put it.
		name := strings.TrimSpace(l.sh(t, "node1", `CONTAINER_NAME=www.1.$(meshctl service ps -f name=www.1 -q www); echo $CONTAINER_NAME`))
		node := strings.TrimSpace(l.sh(t, "node1", "meshctl service ps -f name=www.1 --format '{{.Node}}' www"))
		out := l.sh(t, node, `CONTAINER_NAME=`+name+`
NAMESPACE_CTN=$(meshctl inspect -f '{{ .NetworkSettings.SandboxKey }}' $CONTAINER_NAME)
nsenter --net=$NAMESPACE_CTN ip a`)
		for _, want := range []string{
			`eth0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n\s+link/ether 02:42:0a:ff:[0-9a-f:]+ .*\n\s+inet ` + ingressIP + `/16 `,
			`eth1@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n\s+link/ether 02:42:0a:00:00:[0-9a-f]+ .*\n\s+inet 10\.0\.0\.\d+/24 `,
			`eth2@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 .*\n\s+link/ether 02:42:ac:12:00:[0-9a-f]+ .*\n\s+inet 172\.18\.0\.\d+/16 `,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ip a in www.1's namespace lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("NAMESPACE_OVNET", func(t *testing.T) {
		out := l.sh(t, "node1", `NAMESPACE_OVNET="1-$(meshctl network ls -f name=ovnet -q | cut -c 1-10)"
nsenter --net=/var/run/meshd/netns/$NAMESPACE_OVNET ip a`)
		for _, want := range []string{
			`br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n.*\n\s+inet 10\.0\.0\.1/24 `,
			`vxlan0@if\d+: .* master br0 `,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ip a in ovnet's namespace lacks %s:\n%s", want, out)
			}
		}
		// One veth for the task, one for the load balancer, as the
		// tutorial's veth0 and veth1.
		if n := len(regexp.MustCompile(`(?m)^\d+: veth\w+@if\d+: .* master br0 `).FindAllString(out, -1)); n != 2 {
			t.Errorf("%d veths on ovnet's br0, want 2:\n%s", n, out)
		}
	})

	t.Run("lb-ovnet", func(t *testing.T) {
		out := l.sh(t, "node1", "meshctl network inspect -f '{{ .Containers }}' ovnet")
		for _, want := range []string{
			hex64 + `:\{www\.[12]\.` + swarmID + ` ` + hex64 + ` 02:42:0a:00:00:[0-9a-f]{2} 10\.0\.0\.\d+/24 \}`,
			`lb-ovnet:\{ovnet-endpoint ` + hex64 + ` 02:42:0a:00:00:[0-9a-f]{2} 10\.0\.0\.\d+/24 \}`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ovnet's Containers on node1:\n%s\nlack %s", out, want)
			}
		}
		lbAddr := regexp.MustCompile(`lb-ovnet:\{ovnet-endpoint \S+ \S+ (\S+) \}`).FindStringSubmatch(out)
		ipa := l.sh(t, "node1", `LB_OVNET_NAMESPACE="lb_$(meshctl network ls -f name=ovnet -q | cut -c 1-9)"
nsenter --net=/var/run/meshd/netns/$LB_OVNET_NAMESPACE ip a`)
		for _, want := range []string{
			`eth0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n\s+link/ether 02:42:0a:00:00:[0-9a-f]{2} `,
			`inet 10\.0\.0\.2/32 `, // the VIP
		} {
			if !regexp.MustCompile(want).MatchString(ipa) {
				t.Errorf("ip a in ovnet's load balancer lacks %s:\n%s", want, ipa)
			}
		}
		if lbAddr == nil || !strings.Contains(ipa, "inet "+lbAddr[1]+" ") {
			t.Errorf("the lb-ovnet address network inspect shows (%v) is not on its namespace's eth0:\n%s", lbAddr, ipa)
		}
	})
}

// TestTutorial002 replays the English overlay tutorial: the ingress
// network seen from a node, its hidden ingress-sbox, docker ps and exec
// on the demo service, and a ping across the overlay.
func TestTutorial002(t *testing.T) {
	l := newLab(t, 2)
	l.must(t, "--node", "node1", "network", "create", "-d", "overlay", "--subnet", "192.168.200.0/24", "demonet")
	l.must(t, "--node", "node1", "service", "create", "--name", "demoservice", "--replicas", "2", "--network", "demonet", "alpine", "sleep", "50000")

	matchLines(t, "network ls --filter name=ingress", l.sh(t, "node1", "meshctl network ls --filter name=ingress"),
		row("NETWORK ID", "NAME", "DRIVER", "SCOPE"),
		row(shortID, "ingress", "overlay", "swarm"))

	// The tutorial's node has no task on ingress: the service publishes
	// no port, so ingress-sbox is all there is.
	out := l.sh(t, "node1", "meshctl network inspect ingress --format '{{json .Containers}}' | jq")
	var got map[string]struct{ Name, EndpointID, MacAddress, IPv4Address, IPv6Address string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sbox, ok := got["ingress-sbox"]
	if len(got) != 1 || !ok || sbox.Name != "ingress-endpoint" || !regexp.MustCompile(`^`+hex64+`$`).MatchString(sbox.EndpointID) ||
		sbox.MacAddress != "02:42:0a:ff:00:02" || sbox.IPv4Address != "10.255.0.2/16" || sbox.IPv6Address != "" {
		t.Errorf("ingress's Containers:\n%s\nwant ingress-sbox alone, as the tutorial's: ingress-endpoint 02:42:0a:ff:00:02 10.255.0.2/16", out)
	}

	out = l.sh(t, "node1", "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a")
	for _, want := range []string{
		`eth0@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 .*\n\s+link/ether 02:42:0a:ff:00:02 .*\n\s+inet 10\.255\.0\.2/16 `,
		`eth1@if\d+: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 .*\n\s+link/ether 02:42:ac:12:00:02 .*\n\s+inet 172\.18\.0\.2/16 `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("ip a in ingress_sbox lacks %s:\n%s", want, out)
		}
	}

	cids := map[string]string{}
	for _, node := range []string{"node1", "node2"} {
		out := l.sh(t, node, "meshctl ps")
		matchLines(t, "ps on "+node, out,
			row("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"),
			row(`([0-9a-f]{12})`, `alpine:latest`, `"sleep 50000"`, `(?:\d+ seconds?|About a minute|Less than a second) ago`,
				`Up (?:\d+ seconds?|About a minute|Less than a second)`, `demoservice\.[12]\.`+swarmID))
		cids[node] = strings.Fields(strings.Split(out, "\n")[1])[0]
	}
	addrs := map[string]string{}
	for node, cid := range cids {
		out := l.sh(t, node, "meshctl exec "+cid+" ip a | grep 192.168.200")
		m := regexp.MustCompile(`^\s+inet (192\.168\.200\.\d+)/24 `).FindStringSubmatch(out)
		if m == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Fatalf("exec %s ip a | grep 192.168.200 on %s:\n%s\nwant the task's /24 address", cid, node, out)
		}
		addrs[node] = m[1]
	}
	out = l.sh(t, "node1", "meshctl exec "+cids["node1"]+" ping -c 4 "+addrs["node2"])
	if !strings.Contains(out, "4 packets transmitted, 4 packets received, 0% packet loss") &&
		!strings.Contains(out, "4 packets transmitted, 4 received, 0% packet loss") {
		t.Errorf("ping across the overlay:\n%s", out)
	}
}

// TestTutorial003 replays the Chinese routing-mesh tutorial's service
// commands and curls every node.
func TestTutorial003(t *testing.T) {
	l := newLab(t, 3)
	l.must(t, "--node", "node1", "network", "create", "-d", "overlay", "mynet")
	out := l.sh(t, "node1", "meshctl service create --name web --network mynet -p 8080:80 --replicas 2 containous/whoami")
	matchLines(t, "service create", out, swarmID, `overall progress: 2 out of 2 tasks`,
		`1/2: running   \[={50}>\]`, `2/2: running   \[={50}>\]`, `verify: Service converged`)
	matchLines(t, "service ls", l.sh(t, "node1", "meshctl service ls"),
		row("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"),
		row(shortID, "web", "replicated", "2/2", `containous/whoami:latest`, `\*:8080->80/tcp`))
	matchLines(t, "service ps", l.sh(t, "node1", "meshctl service ps web"),
		row("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"),
		row(shortID, `web\.1`, `containous/whoami:latest`, `node[123]`, "Running", "Running "+ago),
		row(shortID, `web\.2`, `containous/whoami:latest`, `node[123]`, "Running", "Running "+ago))

	// Every node answers, and the answers come from both tasks.
	hostnames := map[string]bool{}
	for _, addr := range []string{"192.168.33.10", "192.168.33.11", "192.168.33.12", "192.168.33.10"} {
		out, err := l.ctl("lab", "exec", "client", "--", "curl", "-s", "-m", "5", addr+":8080")
		if err != nil {
			t.Fatalf("curl %s:8080: %v\n%s", addr, err, out)
		}
		// As the tutorial's: Hostname, loopback, then one address per
		// interface (ingress, gateway bridge, mynet), RemoteAddr from
		// the ingress network, the request.
		re := regexp.MustCompile(`^Hostname: ([0-9a-f]{12})\nIP: 127\.0\.0\.1\n` +
			`(?:IP: (?:` + ingressIP + `|172\.18\.0\.\d+|10\.0\.\d+\.\d+)\n){3}` +
			// The request as Go writes it, lines ending in CRLF.
			`RemoteAddr: ` + ingressIP + `:\d+\nGET / HTTP/1\.1\r\nHost: ` + regexp.QuoteMeta(addr) + `:8080\r\nUser-Agent: curl/\S+\r\nAccept: \*/\*\r\n`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("curl %s:8080:\n%s\nwant the tutorial's shape", addr, out)
			continue
		}
		hostnames[m[1]] = true
	}
	if len(hostnames) != 2 {
		t.Errorf("answers came from %v, want both tasks", slices.Sorted(maps.Keys(hostnames)))
	}

	out = l.sh(t, "node1", "meshctl network inspect docker_gwbridge")
	if !regexp.MustCompile(`"ingress-sbox": \{\s*"Name": "gateway_ingress-sbox",\s*"EndpointID": "` + hex64 +
		`",\s*"MacAddress": "02:42:ac:12:00:02",\s*"IPv4Address": "172\.18\.0\.2/16"`).MatchString(out) {
		t.Errorf("network inspect docker_gwbridge: no ingress-sbox at 172.18.0.2/16:\n%s", out)
	}
}
