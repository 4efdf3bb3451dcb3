//go:build !linux

package kwatch

import "errors"

var errClosed = errors.New("kwatch: watcher closed")

type subscription struct{}

func subscribe(string, func(string, Kind), func(int) bool) (*subscription, error) {
	return nil, errors.New("kwatch: not supported on this system")
}

func (*subscription) close() {}
