package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/lab"
)

// binDir holds meshd and meshctl for every test of the package.
var binDir string

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, remove, err := testutil.LabCommands()
	if err != nil {
		return 0, err
	}
	defer remove()
	binDir = dir
	return m.Run(), nil
}

// testLab is one lab made for one test, with its own prefix.
type testLab struct {
	tb     testing.TB
	prefix string
	root   string
}

// probeRun says whether this run is the one of a single iteration that Go
// makes before the -benchtime Nx asked for (N > 1), whose result it
// throws away: a benchmark whose setup is a whole lab returns from it at
// once rather than build everything twice. With a -benchtime in seconds
// that run is how Go sizes the next ones, so it is never skipped then.
func probeRun(b *testing.B) bool {
	f := flag.Lookup("test.benchtime")
	if b.N != 1 || f == nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(f.Value.String(), "x"))
	return strings.HasSuffix(f.Value.String(), "x") && err == nil && n > 1
}

// newBenchLab is newLab for benchmarks.
func newBenchLab(b *testing.B, n int) *testLab {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("benchmarks in the lab need root")
	}
	l := &testLab{tb: b, prefix: randomPrefix(), root: b.TempDir()}
	b.Cleanup(l.down)
	if out, err := l.ctl("lab", "up", "--nodes", fmt.Sprint(n)); err != nil {
		b.Fatalf("lab up: %v\n%s", err, out)
	}
	return l
}

func (l *testLab) mustB(b *testing.B, args ...string) string {
	b.Helper()
	out, err := l.ctl(args...)
	if err != nil {
		b.Fatalf("meshctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func randomPrefix() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "e" + hex.EncodeToString(b) + "-"
}

// newLab brings up a lab of n nodes and tears it down when the test ends,
// failing the test if anything of it is left behind.
func newLab(t *testing.T, n int) *testLab {
	t.Helper()
	return newLabWith(t, n)
}

// newLabWith is newLab with more lab up flags (--managers 3, --no-swarm).
func newLabWith(t *testing.T, n int, flags ...string) *testLab {
	t.Helper()
	testutil.RequireRoot(t)
	l := &testLab{tb: t, prefix: randomPrefix(), root: t.TempDir()}
	t.Cleanup(l.down)
	args := append([]string{"lab", "up", "--nodes", fmt.Sprint(n), "--lb-mode", lbMode()}, flags...)
	if out, err := l.ctl(args...); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	return l
}

// lbMode is the data plane the suite runs: $MESHD_E2E_LB_MODE (the VM
// suite sets ipvs), else auto.
func lbMode() string {
	if m := os.Getenv("MESHD_E2E_LB_MODE"); m != "" {
		return m
	}
	return "auto"
}

func (l *testLab) down() {
	l.tb.Helper()
	if l.tb.Failed() {
		l.dumpLogs()
	}
	if out, err := l.ctl("lab", "down"); err != nil {
		l.tb.Errorf("lab down: %v\n%s", err, out)
	}
	dir, err := lab.Dir(l.root, l.prefix)
	if err != nil {
		l.tb.Fatal(err)
	}
	left, err := lab.Leftovers(l.prefix, dir)
	if err != nil {
		l.tb.Errorf("look for leftovers: %v", err)
	}
	if len(left) > 0 {
		l.tb.Errorf("lab down left behind: %v", left)
	}
}

// ctl runs meshctl against this lab and returns its combined output.
func (l *testLab) ctl(args ...string) (string, error) {
	full := append([]string{"--lab-prefix", l.prefix, "--lab-root", l.root}, args...)
	return run(60*time.Second, filepath.Join(binDir, "meshctl"), full...)
}

// on runs meshctl against one node of the lab.
func (l *testLab) on(node string, args ...string) (string, error) {
	return l.ctl(append([]string{"--node", node}, args...)...)
}

func (l *testLab) load() *lab.Lab {
	l.tb.Helper()
	lb, err := lab.Load(l.root, l.prefix)
	if err != nil {
		l.tb.Fatalf("load lab: %v", err)
	}
	return lb
}

// ctlStdout runs meshctl against this lab and returns its standard output
// alone, for an output that is parsed whole (an SVG); its standard error
// goes into the error.
func (l *testLab) ctlStdout(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	if err := l.ctlTo(60*time.Second, &out, &errOut, args...); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errOut.String())
	}
	return out.String(), nil
}

// ctlTo runs meshctl against this lab with its output going to stdout
// and stderr: an *os.File is handed to the command itself, no pipe.
func (l *testLab) ctlTo(timeout time.Duration, stdout, stderr io.Writer, args ...string) error {
	full := append([]string{"--lab-prefix", l.prefix, "--lab-root", l.root}, args...)
	return runTo(timeout, stdout, stderr, filepath.Join(binDir, "meshctl"), full...)
}

func run(timeout time.Duration, name string, args ...string) (string, error) {
	var buf bytes.Buffer
	err := runTo(timeout, &buf, &buf, name, args...)
	return buf.String(), err
}

// runTo runs name with the lab's binaries first in its PATH.
func runTo(timeout time.Duration, stdout, stderr io.Writer, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	return cmd.Run()
}

// timeScale stretches the convergence windows the tests allow: 1 on real
// hardware, more under software emulation ($MESHD_E2E_TIME_SCALE, set by
// the VM suite), where every process start costs 100-350 ms.
func timeScale() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("MESHD_E2E_TIME_SCALE")); err == nil && n > 0 {
		return time.Duration(n)
	}
	return 1
}

// eventually is testutil.Eventually with the timeout stretched by
// timeScale, for conditions that report (holds, what was seen).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, timeout*timeScale(), what, func() error {
		if ok, desc := cond(); !ok {
			return fmt.Errorf("last seen:\n%s", desc)
		}
		return nil
	})
}

// dumpLogs prints, for a failed test, every node's warnings and errors
// and the last lines of its log. It stays short so that a CI excerpt
// still shows the failing assertion printed before it.
func (l *testLab) dumpLogs() {
	lb, err := lab.Load(l.root, l.prefix)
	if err != nil {
		return
	}
	for _, n := range lb.Nodes() {
		data, err := os.ReadFile(n.Log)
		if err != nil {
			continue
		}
		l.tb.Logf("--- %s log ---\n%s", n.Name, logExcerpt(string(data), 12, 8))
	}
}

// logExcerpt returns the last tail lines of a log, preceded by at most
// warns of its WARN and ERROR lines that come before them.
func logExcerpt(log string, tail, warns int) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	cut := max(len(lines)-tail, 0)
	var bad []string
	for _, ln := range lines[:cut] {
		if strings.Contains(ln, "level=WARN") || strings.Contains(ln, "level=ERROR") {
			bad = append(bad, ln)
		}
	}
	var b strings.Builder
	if len(bad) > warns {
		fmt.Fprintf(&b, "[%d earlier warnings]\n", len(bad)-warns)
		bad = bad[len(bad)-warns:]
	}
	for _, ln := range bad {
		b.WriteString(ln + "\n")
	}
	if cut > 0 {
		fmt.Fprintf(&b, "[… last %d of %d lines:]\n", len(lines)-cut, len(lines))
	}
	b.WriteString(strings.Join(lines[cut:], "\n"))
	return b.String()
}
