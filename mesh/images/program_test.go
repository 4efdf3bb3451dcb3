package images

import (
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lookPathIn is exec.LookPath on a machine that has exactly the
// executables in have, by name or path.
func lookPathIn(have map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		if p, ok := have[name]; ok {
			return p, nil
		}
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
}

// redisDefaults are the options the redis image gives redis-server before
// the user's.
var redisDefaults = []string{"--bind", "*", "-::*", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/run/t1"}

func TestProgram(t *testing.T) {
	onPath := map[string]string{"redis-server": "/usr/local/bin/redis-server"}
	debian := map[string]string{redisServerPath: redisServerPath}
	tests := []struct {
		name     string
		ref      string
		args     []string
		have     map[string]string
		wantPath string // "" when the built-in server runs
		wantArgv []string
	}{
		{name: "redis, on PATH", ref: "redis", have: onPath, wantPath: "/usr/local/bin/redis-server",
			wantArgv: append([]string{"redis-server"}, redisDefaults...)},
		{name: "redis, PATH without /usr/bin", ref: "redis:7", have: debian, wantPath: redisServerPath,
			wantArgv: append([]string{"redis-server"}, redisDefaults...)},
		{name: "options follow the defaults", ref: "redis", args: []string{"redis-server", "--appendonly", "yes"}, have: debian,
			wantPath: redisServerPath, wantArgv: append(append([]string{"redis-server"}, redisDefaults...), "--appendonly", "yes")},
		{name: "options without the program's name", ref: "redis", args: []string{"--port", "7000"}, have: debian,
			wantPath: redisServerPath, wantArgv: append(append([]string{"redis-server"}, redisDefaults...), "--port", "7000")},
		{name: "a config file stays first", ref: "redis", args: []string{"/etc/r.conf", "--port", "7000"}, have: debian,
			wantPath: redisServerPath, wantArgv: append(append([]string{"redis-server", "/etc/r.conf"}, redisDefaults...), "--port", "7000")},
		{name: "redis, not installed", ref: "redis", have: map[string]string{}},
		{name: "another image", ref: "nginx", have: map[string]string{"nginx": "/usr/sbin/nginx", "redis-server": "/usr/bin/redis-server"}},
		{name: "a shell image", ref: "alpine", args: []string{"redis-server"}, have: onPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Lookup(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			path, argv, ok := program(img, tt.args, "/run/t1", lookPathIn(tt.have))
			if ok != (tt.wantPath != "") || path != tt.wantPath {
				t.Errorf("program = %q, %v; want %q", path, ok, tt.wantPath)
			}
			if diff := cmp.Diff(tt.wantArgv, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

// What inspect and ps show is the program that runs, whichever it is:
// its name and the user's arguments, not meshd's defaults.
func TestRedisCommandLineIsTheProgram(t *testing.T) {
	args := []string{"redis-server", "--appendonly", "yes"}
	path, cmdArgs, ok := CommandLine("redis", args)
	img, _ := Lookup("redis")
	_, argv, found := program(img, args, "/run/t1", lookPathIn(map[string]string{"redis-server": "/usr/bin/redis-server"}))
	if !ok || !found {
		t.Fatalf("CommandLine ok %v, program found %v", ok, found)
	}
	if path != argv[0] {
		t.Errorf("CommandLine path %q, want the program's name %q", path, argv[0])
	}
	if want := argv[len(argv)-len(cmdArgs):]; !cmp.Equal(cmdArgs, want) {
		t.Errorf("CommandLine args %q, want the user's options %q", cmdArgs, want)
	}
}
