package overlay

// NewKernel returns the real kernel: netlink handles opened per namespace
// path on Linux, ErrNotSupported elsewhere. Callers that build more than
// an [Overlay] on the same seam (the agent's sandboxes) share it.
func NewKernel() Kernel { return newKernel() }
