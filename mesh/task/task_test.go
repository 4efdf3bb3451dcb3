package task

import (
	"slices"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

func TestProcessOf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		t       api.Task
		image   string
		args    []string
		workDir string
	}{
		{"a service's task", api.Task{Image: "whoami", Args: []string{"--port", "81"}}, "whoami", []string{"--port", "81"}, ""},
		{"a container", api.Task{Image: "alpine", Args: []string{"ls"}, Standalone: &api.Standalone{WorkingDir: "/srv"}}, "alpine", []string{"ls"}, "/srv"},
		{"an idle container", api.Task{Image: "nginx", Args: []string{"x"}, Standalone: &api.Standalone{Idle: true}}, IdleImage, nil, ""},
		{"--entrypoint", api.Task{Image: "alpine", Args: []string{"-c", "id"}, Standalone: &api.Standalone{Entrypoint: "sh"}}, "", []string{"sh", "-c", "id"}, ""},
	} {
		image, args, wd := ProcessOf(tc.t)
		if image != tc.image || !slices.Equal(args, tc.args) || wd != tc.workDir {
			t.Errorf("%s: %q %q %q, want %q %q %q", tc.name, image, args, wd, tc.image, tc.args, tc.workDir)
		}
	}
}
