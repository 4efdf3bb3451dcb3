package kstate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeProc builds a /proc of processes by PID: their command and their
// descriptor links.
func fakeProc(t *testing.T, procs map[string][]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, links := range procs {
		fd := filepath.Join(root, pid, "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "comm"), []byte("cmd"+pid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for i, l := range links {
			if err := os.Symlink(l, filepath.Join(fd, string(rune('0'+i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestProcOwners(t *testing.T) {
	root := fakeProc(t, map[string][]string{
		"10":  {"/dev/null", "socket:[7]"},
		"9":   {"socket:[5]", "pipe:[6]"},
		"100": {"socket:[5]", "socket:[8]"}, // shares 5 with 9: 9 is named
	})
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, cut, err := procOwners(root, map[uint32]bool{5: true, 7: true, 8: true, 99: true}, 100)
	if err != nil || cut {
		t.Fatalf("cut %v err %v", cut, err)
	}
	want := map[uint32]Proc{5: {9, "cmd9"}, 7: {10, "cmd10"}, 8: {100, "cmd100"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Three links read: 9's two and 10's first; 10's socket is past it.
	got, cut, _ = procOwners(root, map[uint32]bool{5: true, 7: true}, 3)
	if diff := cmp.Diff(map[uint32]Proc{5: {9, "cmd9"}}, got); diff != "" || !cut {
		t.Errorf("limit 3: cut %v (-want +got):\n%s", cut, diff)
	}
	if _, _, err := procOwners(filepath.Join(root, "none"), map[uint32]bool{5: true}, 10); err == nil {
		t.Errorf("no proc: want an error")
	}
}

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint32{"socket:[4026531]": 4026531, "socket:[]": 0, "pipe:[5]": 0, "socket:[12": 0, "/dev/null": 0} {
		if got, ok := socketInode(in); got != want || ok != (want != 0) {
			t.Errorf("socketInode(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
}
