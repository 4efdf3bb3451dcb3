// Package testutil is the one home of the test helpers that more than one
// package needs: the root check of kernel tests, temporary network
// namespaces, polling for a condition, and golden files. It lives under
// internal/ rather than mesh/ because the libraries (lb, overlay, gossip,
// ...) must not depend on the daemon, and it is imported only from
// _test.go files: the -update flag it registers must never reach a
// binary.
//
// Before it, each package carried its own copy of these helpers and the
// copies drifted (one failed in CI without root, one skipped; one golden
// helper rewrote and then compared, one returned). Here each exists once.
package testutil
