package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/internal/nsfile"
)

// Down removes the lab under root (empty means [DefaultRoot]) with prefix:
// SIGTERM to every process of the lab (10 s, then SIGKILL), every mount
// below its directory unmounted, its namespaces deleted, its directory
// removed. It does not need lab.json: namespaces are found by name,
// processes by their --run-dir, network namespace, log (stdout or stderr
// in the lab dir) or PID namespace (a task's), mounts in
// /proc/self/mountinfo. removed is false if nothing of the lab existed.
// Running it twice is fine. ctx only shortens the SIGTERM grace.
func Down(ctx context.Context, root, prefix string) (removed bool, err error) {
	dir, err := labDir(root, prefix)
	if err != nil {
		return false, err
	}
	st, _ := readState(dir) // missing or damaged: the rest is found without it
	f, err := discover(prefix, dir, st.Nodes)
	if err != nil {
		return false, err
	}
	_, statErr := os.Stat(dir)
	if len(f.netns) == 0 && len(f.procs) == 0 && len(f.mounts) == 0 && errors.Is(statErr, fs.ErrNotExist) {
		return false, nil
	}
	errs := []error{stopProcs(ctx, f.procs, stopTimeout), stopStragglers(prefix, dir, st.Nodes), unmountUnder(dir)}
	for _, ns := range f.netns {
		errs = append(errs, nsfile.Remove(netnsPath(ns)))
	}
	errs = append(errs, removeDir(dir))
	if root == "" || filepath.Clean(root) == DefaultRoot {
		os.Remove(DefaultRoot) // only if empty: another lab may live there
	}
	if err := errors.Join(errs...); err != nil {
		return true, fmt.Errorf("lab down: %w", err)
	}
	return true, nil
}

// stopStragglers looks for the lab's processes again once those first
// found are stopped: one forked meanwhile, or one found only now, would
// otherwise outlive a "lab down" that said everything was removed. It
// SIGKILLs them, a few rounds while new ones show up, and fails naming
// those still alive after that.
func stopStragglers(prefix, dir string, recorded []Node) error {
	var left []proc
	for range 3 {
		f, err := discover(prefix, dir, recorded)
		if err != nil {
			return err
		}
		if left = f.procs; len(left) == 0 {
			return nil
		}
		signalProcs(left, syscall.SIGKILL)
		left = waitGone(context.Background(), left, 5*time.Second)
	}
	var errs []error
	for _, p := range left {
		errs = append(errs, fmt.Errorf("pid %d (%s) still runs after the lab's processes were stopped", p.pid, strings.Join(p.argv, " ")))
	}
	return errors.Join(errs...)
}

// Leftovers lists what still exists of the lab with prefix whose directory
// is dir: named namespaces, processes (by --run-dir or network namespace),
// mounts below dir, dir itself, and links of the lab's names in the
// caller's network namespace (there should never be any). Tests use it to
// prove that Down left nothing. Each entry reads "netns tnode1" and the
// like, sorted.
func Leftovers(prefix, dir string) ([]string, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	f, err := discover(prefix, dir, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range f.netns {
		out = append(out, "netns "+ns)
	}
	for _, p := range f.procs {
		out = append(out, fmt.Sprintf("process %d (%s)", p.pid, strings.Join(p.argv, " ")))
	}
	for _, m := range f.mounts {
		out = append(out, "mount "+m.Point)
	}
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "dir "+dir)
	}
	links, err := hostLinks(prefix)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		out = append(out, "link "+l)
	}
	sort.Strings(out)
	return out, nil
}

// found is what exists of one lab.
type found struct {
	netns  []string
	mounts []mount // below the lab dir, deepest first
	procs  []proc
}

// nsKey identifies a namespace: the device and inode of its nsfs file.
type nsKey struct{ dev, ino uint64 }

func discover(prefix, dir string, recorded []Node) (found, error) {
	var f found
	var err error
	if f.netns, err = labNetns(prefix); err != nil {
		return f, err
	}
	ms, err := readMounts()
	if err != nil {
		return f, err
	}
	f.mounts = mountsUnder(ms, dir)
	// The lab's network namespaces: named ones, and those meshd bind-mounted
	// under its run dir. Never the host's, whatever was mounted there.
	inodes := map[nsKey]bool{}
	for _, ns := range f.netns {
		if k, err := nsID(netnsPath(ns)); err == nil {
			inodes[k] = true
		}
	}
	for _, m := range f.mounts {
		if k, err := nsID(m.Point); err == nil && m.FSType == "nsfs" {
			inodes[k] = true
		}
	}
	// This thread's namespace, not /proc/self's: /proc/self is the main
	// thread, which may have been the one a namespace was unshared on (the
	// runtime then parks it, in that namespace, for good).
	for _, host := range []string{"/proc/1/ns/net", "/proc/thread-self/ns/net"} {
		if k, err := nsID(host); err == nil {
			delete(inodes, k)
		}
	}
	f.procs, err = labProcs(dir, recorded, inodes)
	return f, err
}

// labNetns lists the named namespaces whose names are the lab's.
func labNetns(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	re := labNetnsRE(prefix)
	var out []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// labProcs scans /proc for processes of the lab: recorded daemons, any
// process whose --run-dir is in dir, any process in one of inodes, any
// process whose stdout or stderr is a file in dir (a task's, whose log is
// in its node's run dir, even once its network namespace is gone), and
// every process in the PID namespace of one of those (a task's init
// found, all of its task is).
func labProcs(dir string, recorded []Node, inodes map[nsKey]bool) ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	rec := map[int]uint64{}
	for _, n := range recorded {
		if n.PID > 0 {
			rec[n.PID] = n.Start
		}
	}
	// The host's PID namespace is everyone's: never a reason to match.
	hostPID := map[nsKey]bool{}
	for _, host := range []string{"/proc/1/ns/pid", "/proc/self/ns/pid"} {
		if k, err := nsID(host); err == nil {
			hostPID[k] = true
		}
	}
	var out, rest []proc
	pidns := map[nsKey]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		_, start, err := procStat(pid)
		if err != nil || !alive(pid, start) {
			continue
		}
		p := proc{pid: pid, start: start, argv: cmdline(pid)}
		s, ok := rec[pid]
		match := ok && s == start || runDirUnder(p.argv, dir) || stdioUnder(pid, dir)
		if !match {
			k, err := nsID("/proc/" + e.Name() + "/ns/net")
			match = err == nil && inodes[k]
		}
		if !match {
			rest = append(rest, p)
			continue
		}
		out = append(out, p)
		if k, err := nsID("/proc/" + e.Name() + "/ns/pid"); err == nil && !hostPID[k] {
			pidns[k] = true
		}
	}
	for _, p := range rest {
		if k, err := nsID("/proc/" + strconv.Itoa(p.pid) + "/ns/pid"); err == nil && pidns[k] {
			out = append(out, p)
		}
	}
	return out, nil
}

// stdioUnder reports whether pid's stdout or stderr is a file in dir. Only
// those two: a process merely reading a lab file (a tail -f of a log) is
// not the lab's.
func stdioUnder(pid int, dir string) bool {
	for _, fd := range []string{"1", "2"} {
		target, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd)
		if err == nil && strings.HasPrefix(target, dir+"/") {
			return true
		}
	}
	return false
}

func nsID(path string) (nsKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsKey{}, err
	}
	return nsKey{dev: st.Dev, ino: st.Ino}, nil
}

func readMounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// unmountUnder is "umount -l" of every mount at or below dir, deepest first,
// repeated while mounts are stacked on one point.
func unmountUnder(dir string) error {
	for range 8 {
		ms, err := readMounts()
		if err != nil {
			return err
		}
		under := mountsUnder(ms, dir)
		if len(under) == 0 {
			return nil
		}
		var errs []error
		for _, m := range under {
			err := syscall.Unmount(m.Point, syscall.MNT_DETACH)
			if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("umount %s: %w", m.Point, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return fmt.Errorf("umount: mounts remain under %s", dir)
}

// removeDir removes dir unless something is still mounted below it:
// RemoveAll would otherwise delete files of whatever is mounted there.
func removeDir(dir string) error {
	ms, err := readMounts()
	if err != nil {
		return err
	}
	if left := mountsUnder(ms, dir); len(left) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted", dir, left[0].Point)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// hostLinks lists links of the caller's network namespace named like the
// lab's bridge ports (<prefix>node1, <prefix>client).
func hostLinks(prefix string) ([]string, error) {
	all, err := links("")
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	re := labNetnsRE(prefix)
	var out []string
	for _, l := range all {
		if re.MatchString(l.Name) {
			out = append(out, l.Name)
		}
	}
	return out, nil
}
