package e2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

var viewedRE = regexp.MustCompile(`This page has been viewed (\d+) times`)

// TestTrainingWheels runs the French CNM deck's pair: jpetazzo/trainingwheels
// finds redis by its service name through the embedded DNS and counts its
// views there, across the overlay, seen through the routing mesh.
func TestTrainingWheels(t *testing.T) {
	l := newLab(t, 1)
	l.must(t, "--node", "node1", "network", "create", "--driver", "overlay", "dev")
	l.must(t, "--node", "node1", "service", "create", "--name", "redis", "--network", "dev", "redis")
	l.must(t, "--node", "node1", "service", "create", "--name", "tw", "--network", "dev", "--publish", "8000:5000", "jpetazzo/trainingwheels")

	// views curls the page once from the client and returns the count it
	// shows, or -1 and the page.
	views := func() (int, string) {
		out, err := l.ctl(curlFrom("client", "http://192.168.33.10:8000/")...)
		m := viewedRE.FindStringSubmatch(out)
		if err != nil || m == nil {
			return -1, out
		}
		n, _ := strconv.Atoi(m[1])
		return n, out
	}
	first := -1
	eventually(t, 30*time.Second, "a page with a view count", func() (bool, string) {
		n, out := views()
		first = n
		return n > 0, out
	})
	eventually(t, 10*time.Second, "the view count going up", func() (bool, string) {
		n, out := views()
		return n > first, "first " + strconv.Itoa(first) + ", then:\n" + out
	})
}
