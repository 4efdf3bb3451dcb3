//go:build !linux

package task

import (
	"context"
	"fmt"
	"os"
)

// Run reports at once that tasks need Linux: they run in network,
// UTS and mount namespaces.
func Run(ctx context.Context, spec Spec, report func(State)) {
	report(State{State: "failed", Err: "tasks need Linux namespaces"})
}

// Main is the child side, which only Linux has.
func Main([]string) int {
	fmt.Fprintln(os.Stderr, "task: tasks need Linux namespaces")
	return 1
}
