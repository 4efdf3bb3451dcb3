//go:build linux

package nsfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	_ "github.com/meshd/meshd/internal/mainthread" // locked goroutines die off the main thread
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// PrepareDir creates dir and makes it a shared mount point, as "ip netns
// add" does for /run/netns, so that unmounting a namespace file also
// unmounts the copies other mount namespaces hold, and the namespace
// really goes away.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	for range 2 {
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point yet
			return fmt.Errorf("make %s shared: %w", dir, err)
		}
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
	}
	return fmt.Errorf("make %s shared: still not a mount point", dir)
}

// Exists reports whether path holds a network namespace.
func Exists(path string) bool {
	var st, root unix.Statfs_t
	if unix.Statfs(path, &st) != nil || unix.Statfs(filepath.Dir(path), &root) != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Ensure makes a new network namespace at path unless one is there. It is
// "ip netns add" with a directory of our choosing.
func Ensure(path string) (created bool, err error) {
	if Exists(path) {
		return false, nil
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		errc <- create(path)
	}()
	if err := <-errc; err != nil {
		return false, err
	}
	return true, nil
}

func create(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("add netns %s: %w", path, err)
	}
	f.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		os.Remove(path)
		return fmt.Errorf("add netns %s: unshare: %w", path, err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("add netns %s: bind: %w", path, err)
	}
	// Swarm's sandboxes are IPv4 only, and so are the tutorials' answers:
	// no ::1, no link-local routes. /proc/sys/net is this thread's namespace.
	for _, conf := range []string{"all", "default"} {
		p := filepath.Join("/proc/sys/net/ipv6/conf", conf, "disable_ipv6")
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("add netns %s: disable ipv6: %w", path, err)
		}
	}
	// lo is down in a new namespace; every sandbox wants it up.
	if err := setLoUp(); err != nil {
		return fmt.Errorf("add netns %s: lo up: %w", path, err)
	}
	return nil
}

// setLoUp is "ip link set lo up" in this thread's namespace, through the
// SIOCSIFFLAGS ioctl: netlink would be a dependency for one call.
func setLoUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// Remove deletes the namespace at path: "ip netns del". Absent is fine.
func Remove(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("del netns %s: umount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("del netns %s: %w", path, err)
	}
	return nil
}

// List returns the names of the namespace files in dir, sorted.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && Exists(filepath.Join(dir, e.Name())) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// WriteSysctl writes value to /proc/sys/<key> (a path with slashes, as
// "net/ipv4/ip_forward") inside the namespace at path ("" = the caller's
// own). /proc/sys/net shows the namespace of the thread that opens it, so
// the write happens on a thread inside it. An absent key's error matches
// os.ErrNotExist.
func WriteSysctl(path, key, value string) error {
	file := filepath.Join("/proc/sys", key)
	return Do(path, func() error { return os.WriteFile(file, []byte(value), 0o644) })
}

// ReadSysctl is /proc/sys/<key> inside the namespace at path, as
// WriteSysctl writes it, without its newline.
func ReadSysctl(path, key string) (string, error) {
	var v []byte
	err := Do(path, func() (err error) {
		v, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	return strings.TrimSpace(string(v)), err
}

// Do runs fn inside the namespace at path ("" = the caller's own) on a
// thread of its own, and returns fn's error.
func Do(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		if path != "" {
			h, err := netns.GetFromPath(path)
			if err != nil {
				errc <- fmt.Errorf("open netns %s: %w", path, err)
				return
			}
			defer h.Close()
			if err := netns.Set(h); err != nil {
				errc <- fmt.Errorf("enter netns %s: %w", path, err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// Fd opens the namespace at path for moving links into it. The caller
// closes it.
func Fd(path string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return 0, fmt.Errorf("open netns %s: %w", path, err)
	}
	return h, nil
}
