package lb

import (
	"errors"
	"maps"
	"reflect"
	"testing"
)

func TestGrowNeighbours(t *testing.T) {
	kernel := map[string]string{neighThresh1Key: "128", neighThresh2Key: "512", neighThresh3Key: "1024"}
	for _, tt := range []struct {
		name          string
		vals          map[string]string
		readOnly      []string
		least         int
		before, after NeighbourLimits
		writes        []string // in order: the hard limit first
		err           error    // errors.Is; errAny for any error
	}{
		{name: "the kernel's: raised, in the kernel's ratio", vals: kernel, least: 65536,
			before: NeighbourLimits{128, 512, 1024}, after: NeighbourLimits{8192, 32768, 65536},
			writes: []string{neighThresh3Key + "=65536", neighThresh2Key + "=32768", neighThresh1Key + "=8192"}},
		{name: "higher already: nothing written", least: 65536,
			vals:   map[string]string{neighThresh1Key: "80000", neighThresh2Key: "90000", neighThresh3Key: "100000"},
			before: NeighbourLimits{80000, 90000, 100000}, after: NeighbourLimits{80000, 90000, 100000}},
		{name: "one low: that one alone", least: 65536,
			vals:   map[string]string{neighThresh1Key: "128", neighThresh2Key: "40000", neighThresh3Key: "100000"},
			before: NeighbourLimits{128, 40000, 100000}, after: NeighbourLimits{8192, 40000, 100000},
			writes: []string{neighThresh1Key + "=8192"}},
		{name: "left alone", vals: kernel, least: 0, before: NeighbourLimits{128, 512, 1024}, after: NeighbourLimits{128, 512, 1024}},
		{name: "a lab's node: absent", vals: map[string]string{}, least: 65536, err: ErrNeighboursNotHere},
		{name: "read-only", vals: kernel, readOnly: NeighbourSysctls, least: 65536,
			before: NeighbourLimits{128, 512, 1024}, after: NeighbourLimits{128, 512, 1024}, err: ErrNeighboursNotHere},
		{name: "not a count", vals: map[string]string{neighThresh1Key: "128", neighThresh2Key: "512", neighThresh3Key: "many"}, least: 65536, err: errAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &FakeSysctls{Vals: maps.Clone(tt.vals), ReadOnly: tt.readOnly} // kernel is shared
			before, after, err := GrowNeighbours(f, tt.least)
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
