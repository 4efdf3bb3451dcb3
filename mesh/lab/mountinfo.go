package lab

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// mount is one line of /proc/self/mountinfo, the fields the lab needs.
type mount struct {
	Point  string // mount point, unescaped
	FSType string // "nsfs" for a bind-mounted namespace
}

// parseMountinfo reads the proc(5) mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
//
// Mount points escape space, tab, newline and backslash as \ooo.
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("parse mountinfo line %q", sc.Text())
		}
		out = append(out, mount{Point: unescapeOctal(f[4]), FSType: f[sep+1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder returns the mounts at dir or below it, deepest first, so that
// unmounting in order never detaches a parent before its children. A point
// mounted twice appears twice.
func mountsUnder(ms []mount, dir string) []mount {
	dir = filepath.Clean(dir)
	var out []mount
	for _, m := range ms {
		if m.Point == dir || strings.HasPrefix(m.Point, dir+"/") {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].Point, "/"), strings.Count(out[j].Point, "/")
		if di != dj {
			return di > dj
		}
		return out[i].Point < out[j].Point
	})
	return out
}
