package mesh

import "testing"

func TestDaemonProcs(t *testing.T) {
	tests := []struct {
		atStart int
		envSet  bool
		want    int
	}{
		{1, false, 1},
		{2, false, 1},
		{3, false, 1},
		{8, false, 4},
		{2, true, 2}, // GOMAXPROCS=2 asked for it
		{1, true, 1},
	}
	for _, tt := range tests {
		if got := DaemonProcs(tt.atStart, tt.envSet); got != tt.want {
			t.Errorf("DaemonProcs(%d, %v) = %d, want %d", tt.atStart, tt.envSet, got, tt.want)
		}
	}
}
