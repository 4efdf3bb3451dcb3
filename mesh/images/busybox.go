package images

import (
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Alpine's and BusyBox's userland is BusyBox: the commands they run are
// its applets ("ping: bad address 'es'", busybox nslookup's answers),
// where the other shell images run the host's GNU tools. Their shell is
// the host's, though: Debian's busybox runs its own applets before any
// program on PATH, and the deck's "/ # ping es" answers in iputils' words,
// naming the peer by its PTR record ("64 bytes from es.dev"). With no
// busybox binary on the host, everything is the host's.

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
	if path != "" && argv[0] != "sh" && argv[0] != "ash" && slices.Contains(applets, argv[0]) {
		return append([]string{path}, argv...)
	}
	return argv
}
