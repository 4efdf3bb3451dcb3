// Package e2e holds the end-to-end tests: real meshd and meshctl binaries
// in a real local lab (network namespaces on this machine), asserting what
// a user would see. They need root; in CI they fail rather than skip when
// they cannot run.
//
// The binaries are built once per run into a temporary directory, or
// taken from $MESHD_E2E_BIN when it names a directory holding meshd and
// meshctl (the VM suite ships them prebuilt).
package e2e
