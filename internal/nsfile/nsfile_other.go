//go:build !linux

package nsfile

import "errors"

// ErrNotSupported is returned off Linux.
var ErrNotSupported = errors.New("nsfile: network namespaces need Linux")

func PrepareDir(string) error                     { return ErrNotSupported }
func Exists(string) bool                          { return false }
func Ensure(string) (bool, error)                 { return false, ErrNotSupported }
func Remove(string) error                         { return ErrNotSupported }
func List(string) ([]string, error)               { return nil, ErrNotSupported }
func Do(path string, fn func() error) error       { return ErrNotSupported }
func WriteSysctl(path, key, value string) error   { return ErrNotSupported }
func ReadSysctl(path, key string) (string, error) { return "", ErrNotSupported }

// Fd is not supported off Linux.
func Fd(string) (int, error) { return -1, ErrNotSupported }
