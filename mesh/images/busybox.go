package images

import (
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Alpine's and BusyBox's userland is BusyBox: their commands are its
// applets ("ping: bad address 'es'", busybox nslookup's answers), where
// the other shell images run the host's GNU tools. With no busybox
// binary on the host, they run the host's tools too.

// busyboxApplets lists the host busybox's applets, once.
var busyboxApplets = sync.OnceValues(func() (string, []string) {
	path, err := exec.LookPath("busybox")
	if err != nil {
		return "", nil
	}
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return "", nil
	}
	return path, strings.Fields(string(out))
})

// Command is the command line a container of image ref runs for argv
// (its COMMAND words): for alpine and busybox, a BusyBox applet when the
// host's busybox has one by that name; else argv itself. With no argv, a
// shell image runs its shell.
func Command(ref string, argv []string) []string {
	img, err := Lookup(ref)
	if err != nil || !isShell(img.Name) {
		return argv
	}
	if len(argv) == 0 {
		argv = []string{"sh"}
	}
	if img.Name != "alpine" && img.Name != "busybox" {
		return argv
	}
	path, applets := busyboxApplets()
	if path != "" && slices.Contains(applets, argv[0]) {
		return append([]string{path}, argv...)
	}
	return argv
}
