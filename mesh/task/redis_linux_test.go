package task

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/internal/testutil"
	"github.com/vishvananda/netlink"
)

// taskAddr is an address the test gives the task's namespace, as a
// network attachment would give eth0 one: not a loopback address, so a
// server bound to 127.0.0.1 or in protected mode would refuse a client
// that comes from it.
const taskAddr = "10.0.0.5"

// addAddr is "ip addr add taskAddr/32 dev lo" in the namespace at path
// (this kernel may lack the dummy link type).
func addAddr(t *testing.T, path string) {
	t.Helper()
	err := nsfile.Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		addr, err := netlink.ParseAddr(taskAddr + "/32")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, addr)
	})
	if err != nil {
		t.Fatalf("add %s in %s: %v", taskAddr, path, err)
	}
}

// redisClient is one RESP connection, opened inside the task's namespace.
type redisClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(path, addr string) (*redisClient, error) {
	var c net.Conn
	err := nsfile.Do(path, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, time.Second) // the socket is made in the namespace
		return err
	})
	if err != nil {
		return nil, err
	}
	return &redisClient{c: c, r: bufio.NewReader(c)}, nil
}

// do sends one command as a RESP array and returns the reply as
// reply renders it.
func (rc *redisClient) do(args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		return "", err
	}
	return rc.reply()
}

// reply reads one reply: a simple string, error or integer as its line
// ("+PONG", ":42"), a bulk string Go-quoted ("\"42\""), an array as its
// elements in brackets ("[\"save\" \"\"]").
func (rc *redisClient) reply() (string, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	n, err := strconv.Atoi(line[1:])
	switch {
	case line[0] != '$' && line[0] != '*':
		return line, nil
	case err != nil || n < 0 || n > 1<<20:
		return line, nil // nil bulk or array, or nothing a test asks for
	case line[0] == '$':
		body := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, body); err != nil {
			return "", err
		}
		return strconv.Quote(string(body[:n])), nil
	}
	elems := make([]string, n)
	for i := range elems {
		if elems[i], err = rc.reply(); err != nil {
			return "", err
		}
	}
	return "[" + strings.Join(elems, " ") + "]", nil
}

// The redis image, where the machine has Debian's redis-server, is that
// server: the task's process, answering on every address of the task's
// namespace without protected mode, working in the task's own directory
// and writing nothing there, and stopped by meshd's SIGTERM.
func TestRedisImageRunsRedisServer(t *testing.T) {
	testutil.RequireRoot(t)
	server := testutil.RequireTool(t, "redis-server")
	spec := newSpec(t)
	spec.Image = "redis"
	addAddr(t, spec.NetNS)
	pid, rec, stop := runningPID(t, spec)
	want, err := filepath.EvalSymlinks(server)
	if err != nil {
		t.Fatal(err)
	}
	waitExe(t, pid, want)
	var rc *redisClient
	testutil.Eventually(t, 10*time.Second, "redis-server answering on "+taskAddr+":6379", func() (err error) {
		rc, err = dialRedis(spec.NetNS, net.JoinHostPort(taskAddr, "6379"))
		return err
	})
	defer rc.c.Close()
	dir := filepath.Dir(spec.LogPath)
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"SET", "hits", "41"}, "+OK"},
		{[]string{"INCR", "hits"}, ":42"},
		{[]string{"GET", "hits"}, `"42"`},
		{[]string{"CONFIG", "GET", "protected-mode"}, `["protected-mode" "no"]`},
		{[]string{"CONFIG", "GET", "save"}, `["save" ""]`},
		{[]string{"CONFIG", "GET", "appendonly"}, `["appendonly" "no"]`},
		{[]string{"CONFIG", "GET", "dir"}, `["dir" ` + strconv.Quote(dir) + `]`},
	} {
		got, err := rc.do(step.args...)
		if err != nil || got != step.want {
			t.Fatalf("%q: got %s (%v), want %s; log:\n%s", step.args, got, err, step.want, readLog(spec))
		}
	}

	start := time.Now()
	stop()
	if d := time.Since(start); d >= stopGrace {
		t.Errorf("stop took %s: redis-server did not end on SIGTERM, the grace period's SIGKILL did", d)
	}
	requireGone(t, "after stop", pid)
	if got := rec.names(); got[len(got)-1] != "shutdown" {
		t.Errorf("states %v, want shutdown last", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); n != "task.log" && n != "hosts" && n != "hostname" && n != "resolv.conf" {
			t.Errorf("redis-server left %s in the task's directory: no persistence wanted", n)
		}
	}
	if log := readLog(spec); !strings.Contains(log, "Ready to accept connections") {
		t.Errorf("task log is not redis-server's:\n%s", log)
	}
}

func readLog(spec Spec) string {
	b, _ := os.ReadFile(spec.LogPath)
	return string(b)
}
