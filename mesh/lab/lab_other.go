//go:build !linux

package lab

import (
	"context"
	"syscall"
	"time"
)

// Up needs Linux network namespaces; elsewhere it fails with [ErrNotSupported].
func Up(ctx context.Context, opts Options) (*Lab, error) { return nil, ErrNotSupported }

// Down fails with [ErrNotSupported] off Linux.
func Down(ctx context.Context, root, prefix string) (bool, error) { return false, ErrNotSupported }

// Leftovers fails with [ErrNotSupported] off Linux.
func Leftovers(prefix, dir string) ([]string, error) { return nil, ErrNotSupported }

// WaitNodes returns a func that fails with [ErrNotSupported] off Linux.
func WaitNodes(time.Duration, func(context.Context, Node) error) func(context.Context, *Lab) error {
	return func(context.Context, *Lab) error { return ErrNotSupported }
}

// WaitNode fails with [ErrNotSupported] off Linux.
func (l *Lab) WaitNode(context.Context, string, time.Duration, func(context.Context, Node) error) error {
	return ErrNotSupported
}

// StopNode fails with [ErrNotSupported] off Linux.
func (l *Lab) StopNode(name string, sig syscall.Signal) error { return ErrNotSupported }

// StartNode fails with [ErrNotSupported] off Linux.
func (l *Lab) StartNode(ctx context.Context, name string) error { return ErrNotSupported }

// CheckHermetic fails with [ErrNotSupported] off Linux.
func (l *Lab) CheckHermetic() error { return ErrNotSupported }
