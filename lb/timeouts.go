package lb

import (
	"fmt"
	"strings"
	"time"
)

// Timeouts are IPVS's connection timeouts, "ipvsadm --set tcp tcpfin udp".
// Zero leaves the kernel's value (900 s, 120 s, 300 s).
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// IsZero says whether nothing is to be set.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

// ParseTimeouts reads "tcp,tcpfin,udp": Go durations or plain seconds,
// empty fields left alone ("3600s,,").
func ParseTimeouts(s string) (Timeouts, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return Timeouts{}, fmt.Errorf("%q: want tcp,tcpfin,udp", s)
	}
	var out [3]time.Duration
	for i, p := range parts {
		if p == "" {
			continue
		}
		d, err := time.ParseDuration(p)
		if err != nil {
			d, err = time.ParseDuration(p + "s")
		}
		if err != nil || d < time.Second || d%time.Second != 0 {
			return Timeouts{}, fmt.Errorf("%q: %q is not a whole number of seconds", s, p)
		}
		out[i] = d
	}
	return Timeouts{TCP: out[0], TCPFin: out[1], UDP: out[2]}, nil
}
