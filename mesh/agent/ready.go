package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// readyTimeout bounds the wait for a task to listen on its target ports:
// a task that never does is announced anyway, as before.
const readyTimeout = 10 * time.Second

// readyPoll is how often the task's sockets are looked at while waiting:
// the kernel sends no event when a socket starts listening.
const readyPoll = 20 * time.Millisecond

// targetPorts are the ports a task's backends are reached on through the
// routing mesh, by protocol.
func targetPorts(lt *localTask) []api.PortConfig {
	seen := map[string]bool{}
	var out []api.PortConfig
	for _, rec := range lt.endpoints {
		for _, p := range rec.Ports {
			key := fmt.Sprint(p.TargetPort, "/", p.Protocol)
			if !seen[key] {
				seen[key] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// procListening says whether a /proc/<pid>/net/{tcp,tcp6,udp,udp6} table
// has a socket on port: listening for TCP, bound for UDP.
func procListening(table []byte, port uint16, udp bool) bool {
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || uint16(p) != port {
			continue
		}
		// 0A is TCP_LISTEN; a UDP socket is "listening" once bound (07).
		if !udp && f[3] == "0A" || udp && f[3] == "07" {
			return true
		}
	}
	return false
}

// listeningInProc says whether the network namespace of process pid has
// a socket listening on port (the task's own view of its sockets).
func listeningInProc(pid int, port uint16, protocol string) bool {
	names := []string{"tcp", "tcp6"}
	udp := protocol == api.ProtoUDP
	if udp {
		names = []string{"udp", "udp6"}
	}
	for _, n := range names {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, n))
		if err == nil && procListening(data, port, udp) {
			return true
		}
	}
	return false
}

// waitListening returns once the task listens on every target port, or at
// readyTimeout, or when stop is closed; it says whether all listen.
func (a *Agent) waitListening(pid int, ports []api.PortConfig, stop <-chan struct{}) bool {
	deadline := time.Now().Add(readyTimeout)
	for {
		all := true
		for _, p := range ports {
			if !a.cfg.Listening(pid, p.TargetPort, p.Protocol) {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-stop:
			return false
		case <-time.After(readyPoll):
		}
	}
}
