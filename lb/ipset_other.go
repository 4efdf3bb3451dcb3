//go:build !linux

package lb

type netlinkSets struct{}

func (netlinkSets) apply(string, []byte) error { return ErrNotSupported }
