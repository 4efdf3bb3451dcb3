package lb

import (
	"errors"
	"reflect"
	"testing"
)

func TestDefaultConntrackMax(t *testing.T) {
	for _, tt := range []struct{ cpus, want int }{
		{1, 131072}, {2, 131072}, {4, 131072}, {8, 262144}, {64, 2097152}, {4096, MaxConntrackMax},
	} {
		if got := DefaultConntrackMax(tt.cpus); got != tt.want {
			t.Errorf("DefaultConntrackMax(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
	}
}

func TestWantConntrackSize(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cur   ConntrackSize
		least int
		want  ConntrackSize
	}{
		{"1 GB VM", ConntrackSize{8192, 8192}, 131072, ConntrackSize{131072, 131072}},
		{"2 GB VM", ConntrackSize{65536, 65536}, 131072, ConntrackSize{131072, 131072}},
		{"larger already", ConntrackSize{262144, 262144}, 131072, ConntrackSize{262144, 262144}},
		{"limit large, buckets few", ConntrackSize{262144, 16384}, 131072, ConntrackSize{262144, 262144}},
		{"buckets more than entries: kept", ConntrackSize{8192, 524288}, 131072, ConntrackSize{131072, 524288}},
		{"left alone", ConntrackSize{8192, 8192}, 0, ConntrackSize{8192, 8192}},
	} {
		if got := WantConntrackSize(tt.cur, tt.least); got != tt.want {
			t.Errorf("%s: WantConntrackSize(%v, %d) = %v, want %v", tt.name, tt.cur, tt.least, got, tt.want)
		}
	}
}

func TestGrowConntrack(t *testing.T) {
	const max, buckets = conntrackMaxKey, conntrackBucketsKey
	for _, tt := range []struct {
		name          string
		vals          map[string]string
		readOnly      []string
		least         int
		before, after ConntrackSize
		writes        []string // in order: the buckets before the limit
		err           error    // errors.Is; errAny for any error
	}{
		{name: "raised, buckets first", vals: map[string]string{max: "8192", buckets: "8192"}, least: 131072,
			before: ConntrackSize{8192, 8192}, after: ConntrackSize{131072, 131072},
			writes: []string{buckets + "=131072", max + "=131072"}},
		{name: "large enough: nothing written", vals: map[string]string{max: "262144", buckets: "262144"}, least: 131072,
			before: ConntrackSize{262144, 262144}, after: ConntrackSize{262144, 262144}},
		{name: "only the buckets", vals: map[string]string{max: "262144", buckets: "16384"}, least: 131072,
			before: ConntrackSize{262144, 16384}, after: ConntrackSize{262144, 262144}, writes: []string{buckets + "=262144"}},
		{name: "left alone", vals: map[string]string{max: "8192", buckets: "8192"}, least: 0,
			before: ConntrackSize{8192, 8192}, after: ConntrackSize{8192, 8192}},
		{name: "not loaded", vals: map[string]string{}, least: 131072, err: ErrNoConntrack},
		{name: "a lab's node: read-only", vals: map[string]string{max: "8192", buckets: "8192"}, readOnly: ConntrackSysctls, least: 131072,
			before: ConntrackSize{8192, 8192}, after: ConntrackSize{8192, 8192}, err: ErrConntrackReadOnly},
		{name: "buckets read-only (before 5.7): the limit still raised", vals: map[string]string{max: "8192", buckets: "8192"},
			readOnly: []string{buckets}, least: 131072, before: ConntrackSize{8192, 8192}, after: ConntrackSize{131072, 8192},
			writes: []string{max + "=131072"}, err: ErrConntrackReadOnly},
		{name: "not a count", vals: map[string]string{max: "lots", buckets: "8192"}, least: 131072, err: errAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &FakeSysctls{Vals: tt.vals, ReadOnly: tt.readOnly}
			before, after, err := GrowConntrack(f, tt.least)
			if tt.err == errAny {
				if err == nil || len(f.Writes) != 0 {
					t.Errorf("got %v, writes %v; want an error and nothing written", err, f.Writes)
				}
				return
			}
			if !errors.Is(err, tt.err) || before != tt.before || after != tt.after || !reflect.DeepEqual(f.Writes, tt.writes) {
				t.Errorf("got %v -> %v, %v, writes %v; want %v -> %v, %v, writes %v", before, after, err, f.Writes,
					tt.before, tt.after, tt.err, tt.writes)
			}
		})
	}
}

// errAny stands for any error in a table of wanted ones.
var errAny = errors.New("any error")
