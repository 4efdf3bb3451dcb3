package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// compileFilter turns a tcpdump expression into a classic BPF program for
// Ethernet frames, as pcap_compile does, by running tcpdump -ddd: libpcap
// is the reference compiler of that language, and running it here keeps
// meshd and meshctl static (no cgo), with no second compiler of our own
// that would read some expressions differently. tcpdump is needed only
// for -f. -y EN10MB compiles for Ethernet without opening an interface;
// -s makes the program's accepting return the snapshot length.
func compileFilter(ctx context.Context, expr string, snapLen int) ([]api.BPFInstruction, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, errors.New("-f needs tcpdump to compile the filter (apt-get install tcpdump)")
	}
	var stdout, stderr bytes.Buffer
	x := exec.CommandContext(ctx, path, "-y", "EN10MB", "-s", strconv.Itoa(snapLen), "-ddd", "--", expr)
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "tcpdump: "))
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("filter %s: %s", api.Quote(expr), msg)
	}
	prog, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("filter %s: tcpdump -ddd: %w", api.Quote(expr), err)
	}
	return prog, nil
}

// parseDDD reads tcpdump -ddd's output: the number of instructions, then
// one instruction a line as four decimal numbers (code jt jf k).
func parseDDD(out string) ([]api.BPFInstruction, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n < 1 || n > api.MaxBPFInstructions || n != len(lines)-1 {
		return nil, fmt.Errorf("want a count from 1 to %d then as many instructions, got %d lines starting %s",
			api.MaxBPFInstructions, len(lines), api.Quote(lines[0]))
	}
	prog := make([]api.BPFInstruction, n)
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("instruction %d: %s: want code jt jf k", i, api.Quote(line))
		}
		var v [4]uint64
		for j, bits := range []int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(f[j], 10, bits); err != nil {
				return nil, fmt.Errorf("instruction %d: %s: %w", i, api.Quote(line), err)
			}
		}
		prog[i] = api.BPFInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}
