package lab

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDaemonLogIsRootsAlone(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"new", func(*testing.T, string) {}},
		{"left readable by an older lab", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil { // past the umask
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), logFile)
			tt.setup(t, path)
			f, err := openDaemonLog(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("log mode %v, want 0600", got)
			}
		})
	}
}
