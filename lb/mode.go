package lb

import (
	"fmt"
	"os"
	"os/exec"
)

// Mode is a data plane: how a fwmark becomes a backend.
type Mode string

// The data planes. Auto is only ever requested, never running.
const (
	ModeAuto     Mode = "auto"
	ModeIPVS     Mode = "ipvs"
	ModeIPTables Mode = "iptables"
)

// ParseMode checks a --lb-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeIPVS, ModeIPTables:
		return m, nil
	}
	return "", fmt.Errorf("invalid lb mode %q: want auto, ipvs or iptables", s)
}

// ChooseMode resolves a requested mode against what the kernel offers and
// says why, for the log. Asking for IPVS on a kernel without it is an error
// rather than a silent fallback: the user asked for a specific data plane.
func ChooseMode(requested Mode, hasIPVS bool) (Mode, string, error) {
	switch requested {
	case ModeIPVS:
		if !hasIPVS {
			return "", "", fmt.Errorf("lb mode ipvs: this kernel has no IPVS (CONFIG_IP_VS unset or ip_vs not loadable); use --lb-mode iptables or auto")
		}
		return ModeIPVS, "requested", nil
	case ModeIPTables:
		return ModeIPTables, "requested", nil
	case ModeAuto:
		if hasIPVS {
			return ModeIPVS, "auto: kernel has IPVS", nil
		}
		return ModeIPTables, "auto: kernel has no IPVS", nil
	}
	return "", "", fmt.Errorf("invalid lb mode %q", requested)
}

// KernelHasIPVS reports whether IPVS is usable in the caller's network
// namespace, loading the ip_vs module first when modprobe is there.
func KernelHasIPVS() bool {
	if _, err := os.Stat(ipvsProcFile); err == nil {
		return true
	}
	if path, err := exec.LookPath("modprobe"); err == nil {
		_ = exec.Command(path, "-q", "ip_vs").Run() // absence is the answer, not an error
	}
	_, err := os.Stat(ipvsProcFile)
	return err == nil
}
