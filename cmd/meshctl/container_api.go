package main

import (
	"context"

	"github.com/meshd/meshd/mesh/api"
)

// containerAPI is what the standalone container commands (run, stop,
// start, restart, rm, port) need from meshd: the container calls, and the
// task list run resolves its new container in, as exec does.
type containerAPI interface {
	taskAPI
	logsAPI
	RunContainer(ctx context.Context, req api.ContainerCreate) (api.Task, error)
	StopContainer(ctx context.Context, ref string, req api.ContainerStop) error
	StartContainer(ctx context.Context, ref string) (api.Task, error)
	RemoveContainer(ctx context.Context, ref string, force bool) error
	Container(ctx context.Context, ref string) (api.Container, error)
}

var _ containerAPI = (*api.Client)(nil)
