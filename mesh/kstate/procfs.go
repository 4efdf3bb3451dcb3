package kstate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Proc is a process holding a socket: its PID as the node's /proc
// numbers it and its command name (/proc/PID/comm).
type Proc struct {
	PID     int
	Command string
}

// procOwners finds, under the proc file system at root, the process
// holding each socket inode of want, the way "ss -p" does: by reading the
// links of every /proc/PID/fd, which read "socket:[INODE]". Processes are
// read by increasing PID, so a socket several hold gets the lowest. It
// reads at most limit links and says whether it stopped short; it stops
// early once every inode is found. Processes that end, or whose fd
// directory it may not read, are passed over.
func procOwners(root string, want map[uint32]bool, limit int) (map[uint32]Proc, bool, error) {
	out := map[uint32]Proc{}
	if len(want) == 0 {
		return out, false, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", root, err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	read := 0
	for _, pid := range pids {
		dir := filepath.Join(root, strconv.Itoa(pid))
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue // ended, or not ours to read
		}
		var comm string
		for _, fd := range fds {
			if read == limit {
				return out, true, nil
			}
			read++
			target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil {
				continue
			}
			ino, ok := socketInode(target)
			if !ok || !want[ino] {
				continue
			}
			if _, seen := out[ino]; seen {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join(dir, "comm"))
				comm = strings.TrimSpace(string(b))
			}
			out[ino] = Proc{PID: pid, Command: comm}
			if len(out) == len(want) {
				return out, false, nil
			}
		}
	}
	return out, false, nil
}

// socketInode reads a descriptor link "socket:[12345]".
func socketInode(target string) (uint32, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	return uint32(n), err == nil
}
