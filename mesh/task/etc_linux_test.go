package task

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
)

// etcFiles are the host files a task gets its own copy of.
var etcFiles = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}

// hostEtc is what the test process sees of the host's /etc files and of
// the mounts on them: a task must change neither.
func hostEtc(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, f := range etcFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			got[f] = err.Error()
			continue
		}
		got[f] = string(b)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " /etc/") {
			got["mountinfo"] += l + "\n"
		}
	}
	return got
}

// sections splits a log made of "== name" headers and what follows each.
func sections(log string) map[string]string {
	out := map[string]string{}
	var cur string
	for _, l := range strings.SplitAfter(log, "\n") {
		if name, ok := strings.CutPrefix(l, "== "); ok {
			cur = strings.TrimSuffix(name, "\n")
			continue
		}
		out[cur] += l
	}
	return out
}

func TestTaskSeesItsOwnEtcFiles(t *testing.T) {
	testutil.RequireRoot(t)
	before := hostEtc(t)
	spec := newSpec(t, "sh", "-c", "for f in "+strings.Join(etcFiles, " ")+"; do echo == $f; cat $f 2>&1; done")
	var rec recorder
	Run(context.Background(), spec, rec.report)
	log, _ := os.ReadFile(spec.LogPath)
	got := sections(string(log))
	for target, src := range map[string]string{"/etc/hostname": spec.HostnameFile, "/etc/hosts": spec.HostsFile, "/etc/resolv.conf": spec.ResolvConf} {
		if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) && target != "/etc/resolv.conf" {
			// Nothing to bind on: the task sees no such file, as its host.
			if !strings.Contains(got[target], "No such file") {
				t.Errorf("inside the task, %s (missing on the host) is %q, want no such file", target, got[target])
			}
			continue
		}
		if want, _ := os.ReadFile(src); got[target] != string(want) {
			t.Errorf("inside the task, %s is %q, want %q", target, got[target], want)
		}
	}
	if after := hostEtc(t); !maps.Equal(before, after) {
		t.Errorf("the host's /etc files or their mounts changed:\nbefore %q\nafter  %q", before, after)
	}
}

// A target the host does not have is skipped: making it would leave a
// file in the host's /etc.
func TestBindFileSkipsAMissingTarget(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "hostname")
	if err := bindFile(filepath.Join(dir, "src"), target, false); err != nil {
		t.Fatalf("bind on a missing target: %v, want nil", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target %s after the bind: %v, want it still missing", target, err)
	}
	if err := bindFile("", target, true); err != nil {
		t.Errorf("bind of no file: %v, want nil", err)
	}
}
