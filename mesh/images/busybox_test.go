package images

import (
	"os/exec"
	"slices"
	"testing"
)

// hostBusybox is the path of the host's busybox, which alpine and
// busybox run their applets from.
func hostBusybox(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("no busybox on this machine: make deps installs it")
	}
	return path
}

func TestCommand(t *testing.T) {
	busybox := hostBusybox(t)
	for _, tc := range []struct {
		ref  string
		argv []string
		want []string
	}{
		{"alpine", []string{"ping", "es"}, []string{busybox, "ping", "es"}},
		{"alpine:3.19", nil, []string{"sh"}},
		{"busybox", []string{"sh", "-c", "ping es"}, []string{"sh", "-c", "ping es"}},
		{"busybox", []string{"nslookup", "es"}, []string{busybox, "nslookup", "es"}},
		{"alpine", []string{"no-such-applet"}, []string{"no-such-applet"}},
		{"centos", []string{"curl", "-s", "es:9200"}, []string{"curl", "-s", "es:9200"}},
		{"debian", nil, []string{"sh"}},
		{"nginx", []string{"x"}, []string{"x"}},
	} {
		if got := Command(tc.ref, tc.argv); !slices.Equal(got, tc.want) {
			t.Errorf("Command(%s, %q) = %q, want %q", tc.ref, tc.argv, got, tc.want)
		}
	}
}

func TestIdle(t *testing.T) {
	busybox := hostBusybox(t)
	for _, tc := range []struct {
		ref   string
		args  []string
		idles bool
		want  []string
	}{
		{"alpine", nil, true, []string{busybox, "sleep", "infinity"}},
		{"busybox:1.36", []string{}, true, []string{busybox, "sleep", "infinity"}},
		{"ubuntu", nil, true, []string{"sleep", "infinity"}},
		{"alpine", []string{"sleep", "50000"}, false, nil},
		{"whoami", nil, false, nil},
		{"nginx", nil, false, nil},
	} {
		img, err := Lookup(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Idles(tc.args); got != tc.idles {
			t.Errorf("%s %q idles: %v, want %v", tc.ref, tc.args, got, tc.idles)
		}
		if tc.idles && !slices.Equal(IdleCommand(tc.ref), tc.want) {
			t.Errorf("IdleCommand(%s) = %q, want %q", tc.ref, IdleCommand(tc.ref), tc.want)
		}
	}
}
