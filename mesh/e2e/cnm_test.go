package e2e

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	hex64RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	portRE   = regexp.MustCompile(`0\.0\.0\.0:(\d+)->5000/tcp`)
	esNameRE = regexp.MustCompile(`"name" : "([^"]+)"`)
)

// TestCNMSlides replays the French deck on the Container Network Model
// (seeds/001), slide by slide, on one node, with docker read as meshctl,
// and checks what each slide shows.
func TestCNMSlides(t *testing.T) {
	l := newLab(t, 1)
	ctl := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", "node1"}, args...)...))
	}
	try := func(args ...string) (string, error) {
		return l.on("node1", args...)
	}
	ipOf := func(container, network string) string {
		t.Helper()
		return ctl("inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", container)
	}
	isID := func(what, out string) {
		t.Helper()
		if !hex64RE.MatchString(out) {
			t.Fatalf("%s printed %q, want a 64-hex ID", what, out)
		}
	}

	// "Créer un réseau": the predefined networks, then dev.
	ls := ctl("network", "ls")
	for _, want := range []string{`bridge\s+bridge\s+local`, `host\s+host\s+local`, `none\s+null\s+local`} {
		if !regexp.MustCompile(want).MatchString(ls) {
			t.Errorf("network ls lacks %s:\n%s", want, ls)
		}
	}
	isID("network create dev", ctl("network", "create", "dev"))
	if ls := ctl("network", "ls"); !regexp.MustCompile(`dev\s+bridge\s+local`).MatchString(ls) {
		t.Errorf("network ls lacks dev, a local bridge:\n%s", ls)
	}

	// "Placer des containers sur un réseau", "Communication entre containers".
	isID("run -d --name es", ctl("run", "-d", "--name", "es", "--net", "dev", "elasticsearch:2"))
	esIP := ipOf("es", "dev")
	ping := ctl("run", "--rm", "--net", "dev", "alpine", "sh", "-c", "ping -c 1 es")
	if want := "64 bytes from es.dev (" + esIP + ")"; !strings.Contains(ping, want) {
		t.Errorf("ping es from dev: want %q in:\n%s", want, ping)
	}

	// "Lancer le serveur web": -P, then ps -l shows the port.
	ctl("run", "--net", "dev", "-d", "-P", "jpetazzo/trainingwheels")
	m := portRE.FindStringSubmatch(ctl("ps", "-l"))
	if m == nil {
		t.Fatalf("ps -l shows no 0.0.0.0:N->5000/tcp:\n%s", ctl("ps", "-l"))
	}
	page := func() (int, string) {
		out, _ := l.ctl(curlFrom("client", "http://192.168.33.10:"+m[1]+"/")...)
		if v := viewedRE.FindStringSubmatch(out); v != nil {
			n, _ := strconv.Atoi(v[1])
			return n, out
		}
		return -1, out
	}
	eventually(t, 10*time.Second, "the app's error page while redis is absent", func() (bool, string) {
		_, out := page()
		return strings.Contains(out, "Redis connection error"), out
	})

	// "Démarrer la base de données": a container named redis.
	ctl("run", "--net", "dev", "--name", "redis", "-d", "redis")
	counts := func(what string) int {
		first := -1
		eventually(t, 10*time.Second, what, func() (bool, string) {
			n, out := page()
			first = n
			return n > 0, out
		})
		eventually(t, 5*time.Second, "the view count going up", func() (bool, string) {
			n, out := page()
			return n > first, "first " + strconv.Itoa(first) + ", then:\n" + out
		})
		return first
	}
	counts("the app counting its views in redis")

	// "Utiliser un alias de réseau au lieu d'un nom": the counter starts
	// again from 1 on a new redis found by its alias.
	ctl("rm", "-f", "redis")
	ctl("run", "--net", "dev", "--net-alias", "redis", "-d", "redis")
	if first := counts("the app counting in the aliased redis"); first > 2 {
		t.Errorf("the view count went on at %d after redis was replaced: want it back at 1", first)
	}

	// "Tout nom est spécifique à un seul réseau": the default bridge has
	// no names, and no route to dev's containers either.
	if out, err := try("run", "--rm", "alpine", "ping", "-c", "1", "es"); err == nil || !strings.Contains(out, "ping: bad address 'es'") {
		t.Errorf("ping es from the default bridge: %v, want ping: bad address 'es' in:\n%s", err, out)
	}
	if out, err := try("run", "--rm", "alpine", "ping", "-c", "1", "-W", "1", esIP); err == nil {
		t.Errorf("ping %s (es on dev) from the default bridge answered: want the networks isolated\n%s", esIP, out)
	}

	// "Créer des containers sur un autre réseau", "Résoudre les alias".
	ctl("network", "create", "prod")
	isID("run prod-es-1", ctl("run", "-d", "--name", "prod-es-1", "--net-alias", "es", "--net", "prod", "elasticsearch:2"))
	isID("run prod-es-2", ctl("run", "-d", "--name", "prod-es-2", "--net-alias", "es", "--net", "prod", "elasticsearch:2"))
	prod1, prod2 := ipOf("prod-es-1", "prod"), ipOf("prod-es-2", "prod")
	ns := ctl("run", "--net", "prod", "--rm", "alpine", "nslookup", "es")
	for _, ip := range []string{prod1, prod2} {
		if !strings.Contains(ns, "Address: "+ip) {
			t.Errorf("nslookup es on prod: want %s among the answers:\n%s", ip, ns)
		}
	}
	for ip, name := range map[string]string{prod1: "prod-es-1.prod", prod2: "prod-es-2.prod"} {
		if out := ctl("run", "--net", "prod", "--rm", "alpine", "nslookup", ip); !strings.Contains(out, name) {
			t.Errorf("nslookup %s on prod: want %s:\n%s", ip, name, out)
		}
	}

	// "Se connecter aux containers avec alias": es:9200 on each network.
	esName := func(network, host string) string {
		out := ctl("run", "--rm", "--net", network, "centos", "curl", "-s", host+":9200")
		if m := esNameRE.FindStringSubmatch(out); m != nil {
			return m[1]
		}
		t.Fatalf("curl %s:9200 on %s: no name in:\n%s", host, network, out)
		return ""
	}
	devEs := esName("dev", "es")
	prodNames := []string{esName("prod", "prod-es-1"), esName("prod", "prod-es-2")}
	if got := esName("dev", "es"); got != devEs {
		t.Errorf("es on dev answered %q, then %q: want one container", devEs, got)
	}
	for range 4 {
		if got := esName("prod", "es"); !slices.Contains(prodNames, got) {
			t.Errorf("es on prod answered %q: want one of %v", got, prodNames)
		}
	}

	// A container on two networks resolves in connection order, and
	// es.dev, es.prod by network.
	both := ctl("run", "--rm", "--net", "dev", "--net", "prod", "debian", "sh", "-c",
		"getent hosts es | head -1; getent ahostsv4 es.prod | cut -d' ' -f1 | sort -u; getent hosts es.dev")
	var first []string // each line's address
	for _, line := range strings.Split(both, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			first = append(first, f[0])
		}
	}
	prodSet := []string{prod1, prod2}
	slices.Sort(prodSet)
	if len(first) != 4 || first[0] != esIP || !slices.Equal(first[1:3], prodSet) || first[3] != esIP {
		t.Errorf("on dev then prod, es, es.prod and es.dev gave:\n%s\nwant %s, then %v, then %s", both, esIP, prodSet, esIP)
	}
	if out := ctl("network", "inspect", "dev", "-f", "{{range .Containers}}{{.Name}} {{end}}"); !slices.Contains(strings.Fields(out), "es") {
		t.Errorf("network inspect dev lists %q, want es among its containers", out)
	}
	if out, err := try("network", "rm", "dev"); err == nil || !strings.Contains(out, "has active endpoints") {
		t.Errorf("network rm dev with containers on it: %v\n%s", err, out)
	}

	// "Choisir l'adresse IP des containers".
	isID("network create pubnet", ctl("network", "create", "--subnet", "10.66.0.0/16", "pubnet"))
	isID("run --ip", ctl("run", "--net", "pubnet", "--ip", "10.66.66.66", "-d", "--name", "pub", "nginx"))
	if out := ctl("exec", "pub", "ip", "a"); !strings.Contains(out, "inet 10.66.66.66/16") {
		t.Errorf("ip a in pub lacks inet 10.66.66.66/16:\n%s", out)
	}

	// "Réseaux spécifiques": --internal has no default route; the range
	// and the aux address steer the allocation.
	ctl("network", "create", "--internal", "--gateway", "10.77.0.254", "--subnet", "10.77.0.0/16",
		"--ip-range", "10.77.1.0/24", "--aux-address", "router=10.77.1.0", "--aux-address", "printer=10.77.1.1", "intra")
	ctl("run", "-d", "--name", "inside", "--net", "intra", "alpine", "sleep", "3600")
	if out := ctl("exec", "inside", "ip", "route"); strings.Contains(out, "default") || !strings.Contains(out, "10.77.0.0/16") {
		t.Errorf("routes of a container on an internal network:\n%s\nwant its subnet and no default", out)
	}
	if got := ipOf("inside", "intra"); got != "10.77.1.2" {
		t.Errorf("address on intra %s, want 10.77.1.2 (in the range, past the aux addresses)", got)
	}

	// "Connexion et déconnexion dynamique".
	ctl("run", "-d", "--name", "lone", "alpine", "sleep", "3600")
	if _, err := try("exec", "lone", "ping", "-c", "1", "-W", "1", "es"); err == nil {
		t.Error("lone, on the default bridge, resolved and reached es before network connect")
	}
	ctl("network", "connect", "dev", "lone")
	if out, err := try("exec", "lone", "ping", "-c", "1", "-W", "2", "es"); err != nil || !strings.Contains(out, "64 bytes from es.dev") {
		t.Errorf("ping es after network connect dev: %v\n%s", err, out)
	}
	ctl("network", "disconnect", "dev", "lone")
	if out, err := try("exec", "lone", "ping", "-c", "1", "-W", "1", "es"); err == nil {
		t.Errorf("ping es after network disconnect answered:\n%s", out)
	}
	if out, err := try("exec", "lone", "ping", "-c", "1", "-W", "1", esIP); err == nil {
		t.Errorf("ping %s after network disconnect answered:\n%s", esIP, out)
	}

	// The PTR of an anonymous container is its first alias.
	ctl("run", "-d", "--net", "prod", "--net-alias", "hello", "alpine", "sleep", "3600")
	helloIP := strings.Fields(ctl("ps", "-l", "-q"))[0]
	helloIP = ipOf(helloIP, "prod")
	if out := ctl("run", "--net", "prod", "--rm", "debian", "dig", "+short", "-x", helloIP); out != "hello.prod." {
		t.Errorf("PTR of %s: %q, want hello.prod.", helloIP, out)
	}
}

// rm -f leaves the node as it was before run: links, rules, names.
func TestContainerRemoveLeavesNothing(t *testing.T) {
	l := newLab(t, 1)
	ctl := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(l.must(t, append([]string{"--node", "node1"}, args...)...))
	}
	ctl("network", "create", "dev")
	ctl("run", "-d", "--name", "es", "--net", "dev", "elasticsearch:2")
	snapshot := func() string {
		rules, err := l.onNode("node1", "iptables-save")
		if err != nil {
			t.Fatal(err)
		}
		links, err := l.onNode("node1", "ip", "-o", "link")
		if err != nil {
			t.Fatal(err)
		}
		ns, _ := l.onNode("node1", "ls", "/var/run/meshd/netns")
		return counterless(rules) + "\n" + linkNames(links) + "\n" + ns
	}
	before := snapshot()
	ctl("run", "-d", "--name", "web", "--net", "dev", "--net-alias", "www", "-p", "8080:80", "nginx")
	if after := snapshot(); after == before {
		t.Fatal("run -p changed no rule, link or namespace")
	}
	if out := ctl("exec", "es", "getent", "hosts", "www"); out == "" {
		t.Error("www does not resolve while web runs")
	}
	ctl("rm", "-f", "web")
	if after := snapshot(); after != before {
		t.Errorf("after rm -f:\n%s", diffLines(before, after))
	}
	if out, err := l.on("node1", "exec", "es", "getent", "hosts", "www"); err == nil {
		t.Errorf("www still resolves after rm -f: %s", out)
	}

	// Containers come back after a meshd restart, with their names.
	ctl("run", "-d", "--name", "redis", "--net", "dev", "redis")
	l.must(t, "lab", "restart", "node1")
	eventually(t, 20*time.Second, "es and redis running again after the restart", func() (bool, string) {
		out, _ := l.on("node1", "ps")
		return upRE("es").MatchString(out) && upRE("redis").MatchString(out), out
	})
	eventually(t, 10*time.Second, "redis resolving from es again", func() (bool, string) {
		out, err := l.on("node1", "exec", "es", "getent", "hosts", "redis")
		return err == nil && out != "", out
	})
}

// counterless drops iptables-save's comments and packet counters.
func counterless(save string) string {
	var out []string
	for _, line := range strings.Split(save, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, ":") {
			line = line[:strings.LastIndex(line, " ")]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// linkNames are the names of ip -o link's lines, sorted.
func linkNames(links string) string {
	var names []string
	for _, line := range strings.Split(links, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	slices.Sort(names)
	return strings.Join(names, "\n")
}

// upRE matches ps's line of a running container named name.
func upRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)\sUp .*\s` + regexp.QuoteMeta(name) + `$`)
}

// Outside a swarm a node runs containers on its bridges too, as docker
// does before swarm init: ps lists them, run in the foreground works.
func TestContainersWithoutSwarm(t *testing.T) {
	l := newLabWith(t, 1, "--no-swarm")
	l.must(t, "--node", "node1", "network", "create", "dev")
	l.must(t, "--node", "node1", "run", "-d", "--name", "es", "--net", "dev", "elasticsearch:2")
	if out := l.must(t, "--node", "node1", "ps"); !upRE("es").MatchString(out) {
		t.Errorf("ps outside a swarm:\n%s\nwant es up", out)
	}
	if out := l.must(t, "--node", "node1", "run", "--rm", "--net", "dev", "alpine", "sh", "-c", "ping -c 1 es"); !strings.Contains(out, "64 bytes from es.dev") {
		t.Errorf("ping es outside a swarm:\n%s", out)
	}
	// stop ends the process with SIGTERM, which its init (tini) passes
	// on: Exited (143), as docker stop shows a container run with --init.
	l.must(t, "--node", "node1", "run", "-d", "--name", "sl", "alpine", "sleep", "1000")
	// Once sleep runs, tini handles signals; before, as PID 1 of its
	// namespace with no handler yet, it would drop the SIGTERM.
	eventually(t, 10*time.Second, "sleep running in sl", func() (bool, string) {
		out, _ := l.on("node1", "exec", "sl", "ps", "-o", "args")
		return strings.Contains(out, "sleep 1000"), out
	})
	l.must(t, "--node", "node1", "stop", "sl")
	if out := l.must(t, "--node", "node1", "ps", "-a", "--filter", "name=sl", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "sl Exited (143) ") {
		t.Errorf("ps -a after stop sl: %q, want sl Exited (143) …", out)
	}
	if code := strings.TrimSpace(l.must(t, "--node", "node1", "inspect", "-f", "{{.State.ExitCode}}", "sl")); code != "143" {
		t.Errorf("inspect -f {{.State.ExitCode}} sl after stop: %q, want 143", code)
	}
}
