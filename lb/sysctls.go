package lb

import "github.com/meshd/meshd/internal/nsfile"

// Sysctls reads and writes kernel settings by their path below /proc/sys
// ("net/netfilter/nf_conntrack_max"): a sandbox's forwarding settings
// (WithSysctls) and the host's conntrack table (GrowConntrack). Errors
// wrap the file's: fs.ErrNotExist for an absent key, fs.ErrPermission
// for one this namespace may not write.
type Sysctls interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

// ProcSysctls is [Sysctls] through /proc/sys in the network namespace
// at NetNS ("" = the caller's).
type ProcSysctls struct{ NetNS string }

// Get implements [Sysctls].
func (p ProcSysctls) Get(key string) (string, error) { return nsfile.ReadSysctl(p.NetNS, key) }

// Set implements [Sysctls].
func (p ProcSysctls) Set(key, value string) error { return nsfile.WriteSysctl(p.NetNS, key, value) }
