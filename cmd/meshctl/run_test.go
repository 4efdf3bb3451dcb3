package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/images"
	"github.com/spf13/cobra"
)

// TestRunCommandLine checks where each word of run's command line goes,
// with the French CNM deck's commands first, and that bad input fails in
// one line before meshd is asked.
func TestRunCommandLine(t *testing.T) {
	t.Setenv("MESHCTL_TEST_HOME", "/home/test")
	tests := []struct {
		name    string
		args    []string
		want    api.ContainerCreate // the request built; see runRequest
		detach  bool
		argv    []string
		wantErr string
	}{
		{name: "deck: a named container on dev", args: []string{"-d", "--name", "es", "--net", "dev", "elasticsearch:2"}, detach: true,
			want: api.ContainerCreate{Name: "es", Image: "elasticsearch:2", Networks: []api.ContainerAttach{{Network: "dev"}}}},
		{name: "deck: publish all", args: []string{"--net", "dev", "-d", "-P", "jpetazzo/trainingwheels"}, detach: true,
			want: api.ContainerCreate{Image: "jpetazzo/trainingwheels", PublishAll: true, Networks: []api.ContainerAttach{{Network: "dev"}}}},
		{name: "deck: alias before the network", args: []string{"-d", "--name", "prod-es-1", "--net-alias", "es", "--net", "prod", "elasticsearch:2"}, detach: true,
			want: api.ContainerCreate{Name: "prod-es-1", Image: "elasticsearch:2", Networks: []api.ContainerAttach{{Network: "prod", Aliases: []string{"es"}}}}},
		{name: "deck: --rm with a command", args: []string{"--net", "prod", "--rm", "alpine", "nslookup", "es"}, argv: []string{"nslookup", "es"},
			want: api.ContainerCreate{Image: "alpine", Cmd: []string{"nslookup", "es"}, AutoRemove: true, Networks: []api.ContainerAttach{{Network: "prod"}}}},
		{name: "deck: a fixed address", args: []string{"--net", "pubnet", "--ip", "10.66.66.66", "-d", "nginx"}, detach: true,
			want: api.ContainerCreate{Image: "nginx", Networks: []api.ContainerAttach{{Network: "pubnet", IP: "10.66.66.66"}}}},
		{name: "aliases and address go with the first network", args: []string{"--network", "a", "--network-alias", "x", "--net", "b", "--net-alias", "y", "--ip", "10.0.0.9", "alpine"},
			want: api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "a", Aliases: []string{"x", "y"}, IP: "10.0.0.9"}, {Network: "b"}}}},
		{name: "an alias without a network is the bridge's, for meshd to refuse", args: []string{"--net-alias", "x", "alpine"},
			want: api.ContainerCreate{Image: "alpine", Networks: []api.ContainerAttach{{Network: "bridge", Aliases: []string{"x"}}}}},
		{name: "flags after IMAGE are the command's", args: []string{"alpine", "ls", "-l", "-d"}, argv: []string{"ls", "-l", "-d"},
			want: api.ContainerCreate{Image: "alpine", Cmd: []string{"ls", "-l", "-d"}}},
		{name: "every -p form", detach: true, args: []string{"-d", "-p", "8080:80", "-p", "80", "-p", "127.0.0.1:8081:80", "-p", "8080:80/udp",
			"-p", "127.0.0.1::53/UDP", "-p", "[::1]:9000:90", "-p", "0:81", "--publish", "443/", "nginx"},
			want: api.ContainerCreate{Image: "nginx", Publish: []api.ContainerPort{
				{Proto: "tcp", HostPort: 8080, Port: 80}, {Proto: "tcp", Port: 80}, {Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8081, Port: 80},
				{Proto: "udp", HostPort: 8080, Port: 80}, {Proto: "udp", HostIP: "127.0.0.1", Port: 53}, {Proto: "tcp", HostIP: "::1", HostPort: 9000, Port: 90},
				{Proto: "tcp", Port: 81}, {Proto: "tcp", Port: 443}}}},
		{name: "env, workdir, hostname, entrypoint", args: []string{"-e", "A=1", "--env", "MESHCTL_TEST_HOME", "-e", "MESHCTL_TEST_UNSET", "-w", "/srv",
			"-h", "box", "--entrypoint", "ping", "busybox", "-c", "1", "es"}, argv: []string{"-c", "1", "es"},
			want: api.ContainerCreate{Image: "busybox", Cmd: []string{"-c", "1", "es"}, Entrypoint: "ping", WorkingDir: "/srv", Hostname: "box",
				Env: []string{"A=1", "MESHCTL_TEST_HOME=/home/test"}}},
		{name: "--rm with -d, as modern docker", args: []string{"--rm", "-d", "alpine"}, detach: true,
			want: api.ContainerCreate{Image: "alpine", AutoRemove: true}},
		{name: "-it with -d needs no terminal", args: []string{"-dit", "alpine"}, detach: true, want: api.ContainerCreate{Image: "alpine"}},

		{name: "no image", args: []string{"-d"}, wantErr: `"meshctl run" requires at least 1 argument (see 'meshctl run --help')`},
		{name: "deck: -it needs a terminal", args: []string{"-ti", "--net", "dev", "alpine", "sh"}, wantErr: "the input device is not a TTY"},
		{name: "bad host port", args: []string{"-p", "abc:80", "nginx"}, wantErr: "invalid hostPort: abc"},
		{name: "bad container port", args: []string{"-p", "80:abc", "nginx"}, wantErr: "invalid containerPort: abc"},
		{name: "container port 0", args: []string{"-p", "8080:0", "nginx"}, wantErr: "invalid containerPort: 0"},
		{name: "container port too big", args: []string{"-p", "70000", "nginx"}, wantErr: "invalid containerPort: 70000"},
		{name: "no container port", args: []string{"-p", "8080:", "nginx"}, wantErr: "no port specified: 8080:<empty>"},
		{name: "no port at all", args: []string{"-p", "/udp", "nginx"}, wantErr: "no port specified: /udp<empty>"},
		{name: "bad host IP", args: []string{"-p", "1.2.3:80:80", "nginx"}, wantErr: "invalid IP address: 1.2.3"},
		{name: "unknown protocol", args: []string{"-p", "80/sctp", "nginx"}, wantErr: "invalid proto: sctp"},
		{name: "port ranges", args: []string{"-p", "8000-8001:80-81", "nginx"}, wantErr: "invalid containerPort: 80-81"},
		{name: "bad --ip", args: []string{"--net", "dev", "--ip", "10.0.0.300", "nginx"}, wantErr: "invalid IPv4 address: 10.0.0.300"},
		{name: "IPv6 --ip", args: []string{"--net", "dev", "--ip", "::1", "nginx"}, wantErr: "invalid IPv4 address: ::1"},
		{name: "a network twice", args: []string{"--net", "dev", "--network", "dev", "nginx"}, wantErr: `network "dev" is specified multiple times`},
		{name: "bad -e", args: []string{"-e", "=x", "alpine"}, wantErr: "invalid environment variable: =x"},
		{name: "unknown flag", args: []string{"--frobnicate", "alpine"}, wantErr: "unknown flag: --frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *runOptions
			c := &cli{in: strings.NewReader(""), out: io.Discard, errOut: io.Discard, socket: "/nonexistent/meshd.sock"}
			cmd := runCommand(c, func(_ context.Context, _ *api.Client, opts runOptions) error {
				got = &opts
				return nil
			})
			root := &cobra.Command{Use: "meshctl", SilenceErrors: true, SilenceUsage: true}
			root.AddCommand(cmd)
			root.SetArgs(append([]string{"run"}, tt.args...))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("got error %v, want %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("run was called with %+v, want no call", *got)
				}
				return
			}
			if err != nil || got == nil {
				t.Fatalf("got error %v and options %v, want options", err, got)
			}
			if diff := cmp.Diff(tt.want, got.req); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
			if got.detach != tt.detach || !cmp.Equal(got.argv, tt.argv) {
				t.Errorf("got detach %v and command %q, want %v and %q", got.detach, got.argv, tt.detach, tt.argv)
			}
		})
	}
}

// TestRunHelp checks that -h is --hostname, as docker run has it, and
// that --help still prints the usage.
func TestRunHelp(t *testing.T) {
	out, err := execute(t, "run", "--help")
	if err != nil || !strings.Contains(out, "-h, --hostname string") {
		t.Errorf("got error %v and output %q, want run's usage with -h, --hostname", err, out)
	}
}

// TestShellImages holds shellImage to mesh/images: the images whose
// default command is a shell are those that run a command they are given.
func TestShellImages(t *testing.T) {
	for _, name := range images.Names() {
		for _, ref := range []string{name, name + ":latest", "docker.io/" + name + ":1.0"} {
			img, err := images.Lookup(ref)
			if err != nil {
				continue // library/ only for the official ones
			}
			if got, want := shellImage(ref), img.RunsCommand([]string{"true"}); got != want {
				t.Errorf("shellImage(%q) = %v, want %v as mesh/images has it", ref, got, want)
			}
		}
	}
	for _, ref := range []string{"docker.io/library/alpine:3.19", "alpine@sha256:0", "busybox:1.36"} {
		if !shellImage(ref) {
			t.Errorf("shellImage(%q) = false, want true", ref)
		}
	}
	for _, ref := range []string{"localhost:5000/alpine2", "nginx", "whoami", ""} {
		if shellImage(ref) {
			t.Errorf("shellImage(%q) = true, want false", ref)
		}
	}
}

// FuzzParseRunPublish checks that no -p value panics, and that one
// accepted names a container port and a protocol meshd knows.
func FuzzParseRunPublish(f *testing.F) {
	for _, s := range []string{"8080:80", "80", "127.0.0.1:8080:80", "8080:80/udp", "[::1]::80", ":::80", "/", "::", "80/tcp/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseRunPublish(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Errorf("parseRunPublish(%q): error %q is not one line", s, err)
			}
			return
		}
		if p.Port == 0 || (p.Proto != api.ProtoTCP && p.Proto != api.ProtoUDP) {
			t.Errorf("parseRunPublish(%q) = %+v, want a port and tcp or udp", s, p)
		}
	})
}
