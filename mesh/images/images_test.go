package images

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		ref     string
		name    string // want Image.Name; "" means want an error
		tag     string // want Image.Tag
		ports   []int
		wantErr error
	}{
		// whoami and its Docker Hub names, as the tutorials type them.
		{ref: "whoami", name: "whoami", ports: []int{80}},
		{ref: "whoami:latest", tag: "latest", name: "whoami", ports: []int{80}},
		{ref: "containous/whoami", name: "whoami", ports: []int{80}},
		{ref: "containous/whoami:latest", tag: "latest", name: "whoami", ports: []int{80}},
		{ref: "containous/whoami:v1.5.0", tag: "v1.5.0", name: "whoami", ports: []int{80}},
		{ref: "traefik/whoami", name: "whoami", ports: []int{80}},
		{ref: "traefik/whoami:v1.10", tag: "v1.10", name: "whoami", ports: []int{80}},
		{ref: "docker.io/traefik/whoami:latest", tag: "latest", name: "whoami", ports: []int{80}},
		// nginx with any tag.
		{ref: "nginx", name: "nginx", ports: []int{80}},
		{ref: "nginx:1.14-alpine", tag: "1.14-alpine", name: "nginx", ports: []int{80}},
		{ref: "nginx:latest", tag: "latest", name: "nginx", ports: []int{80}},
		{ref: "nginx:stable_perl.1", tag: "stable_perl.1", name: "nginx", ports: []int{80}},
		{ref: "library/nginx", name: "nginx", ports: []int{80}},
		{ref: "docker.io/library/nginx:1.25", tag: "1.25", name: "nginx", ports: []int{80}},
		{ref: "docker.io/nginx", name: "nginx", ports: []int{80}},
		{ref: "nginx:" + strings.Repeat("a", 128), tag: strings.Repeat("a", 128), name: "nginx", ports: []int{80}},
		// idle images.
		{ref: "alpine", name: "alpine"},
		{ref: "alpine:3.19", tag: "3.19", name: "alpine"},
		{ref: "busybox", name: "busybox"},
		{ref: "busybox:1.36-musl", tag: "1.36-musl", name: "busybox"},
		{ref: "docker.io/library/busybox", name: "busybox"},
		{ref: "centos", name: "centos"},
		{ref: "centos:7", tag: "7", name: "centos"},
		{ref: "ubuntu", name: "ubuntu"},
		{ref: "ubuntu:22.04", tag: "22.04", name: "ubuntu"},
		{ref: "library/ubuntu", name: "ubuntu"},
		{ref: "debian", name: "debian"},
		{ref: "docker.io/library/debian:bookworm-slim", tag: "bookworm-slim", name: "debian"},
		// The French CNM deck's servers.
		{ref: "elasticsearch", name: "elasticsearch", ports: []int{9200}},
		{ref: "elasticsearch:2", tag: "2", name: "elasticsearch", ports: []int{9200}},
		{ref: "library/elasticsearch:2.4", tag: "2.4", name: "elasticsearch", ports: []int{9200}},
		{ref: "docker.io/library/elasticsearch:2", tag: "2", name: "elasticsearch", ports: []int{9200}},
		{ref: "redis", name: "redis", ports: []int{6379}},
		{ref: "redis:7-alpine", tag: "7-alpine", name: "redis", ports: []int{6379}},
		{ref: "docker.io/redis", name: "redis", ports: []int{6379}},
		{ref: "library/redis", name: "redis", ports: []int{6379}},
		{ref: "jpetazzo/trainingwheels", name: "jpetazzo/trainingwheels", ports: []int{5000}},
		{ref: "jpetazzo/trainingwheels:latest", tag: "latest", name: "jpetazzo/trainingwheels", ports: []int{5000}},
		{ref: "docker.io/jpetazzo/trainingwheels", name: "jpetazzo/trainingwheels", ports: []int{5000}},

		// Not built in.
		{ref: "", wantErr: ErrUnknown},
		{ref: "postgres", wantErr: ErrUnknown},
		{ref: "trainingwheels", wantErr: ErrUnknown},                  // only under its Docker Hub name
		{ref: "library/jpetazzo/trainingwheels", wantErr: ErrUnknown}, // not an official image
		{ref: "library/trainingwheels", wantErr: ErrUnknown},
		{ref: "elastic/elasticsearch", wantErr: ErrUnknown},
		{ref: "docker.elastic.co/elasticsearch/elasticsearch", wantErr: ErrUnknown},
		{ref: "bitnami/redis", wantErr: ErrUnknown},
		{ref: "NGINX", wantErr: ErrUnknown},          // Docker names are lowercase
		{ref: " nginx", wantErr: ErrUnknown},         // not trimmed
		{ref: "nginx ", wantErr: ErrUnknown},         // not trimmed
		{ref: "library/whoami", wantErr: ErrUnknown}, // whoami is not an official image
		{ref: "library/containous/whoami", wantErr: ErrUnknown},
		{ref: "foo/nginx", wantErr: ErrUnknown},
		{ref: "containous/nginx", wantErr: ErrUnknown},
		{ref: "localhost:5000/nginx", wantErr: ErrUnknown}, // a registry port is not a tag
		{ref: "quay.io/nginx", wantErr: ErrUnknown},
		{ref: "whoami/", wantErr: ErrUnknown},
		{ref: ":latest", wantErr: ErrUnknown},
		{ref: ":", wantErr: ErrUnknown},
		{ref: "@", wantErr: ErrUnknown},
		{ref: "nginx\n", wantErr: ErrUnknown},
		{ref: "\xff\xfe", wantErr: ErrUnknown},

		// Built in, but the reference is malformed. An empty tag is an
		// error, as in Docker, not "latest".
		{ref: "whoami:", wantErr: ErrInvalidRef},
		{ref: "containous/whoami:", wantErr: ErrInvalidRef},
		{ref: "nginx::1", wantErr: ErrUnknown}, // repo "nginx:" is no name
		{ref: "nginx:.hidden", wantErr: ErrInvalidRef},
		{ref: "nginx:-x", wantErr: ErrInvalidRef},
		{ref: "nginx:a b", wantErr: ErrInvalidRef},
		{ref: "nginx:ü", wantErr: ErrInvalidRef},
		{ref: "nginx:" + strings.Repeat("a", 129), wantErr: ErrInvalidRef},
		{ref: "nginx@sha256:0123456789abcdef", wantErr: ErrInvalidRef},
		{ref: "alpine:3.19@sha256:0123", wantErr: ErrInvalidRef},
		{ref: "nginx:1.14@x:y", wantErr: ErrInvalidRef},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			img, err := Lookup(tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Lookup(%q) = %+v, %v; want error %v", tt.ref, img, err, tt.wantErr)
				}
				if diff := cmp.Diff(Image{}, img); diff != "" {
					t.Errorf("Lookup(%q) image on error (-want +got):\n%s", tt.ref, diff)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("Lookup(%q) error spans lines: %q", tt.ref, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%q): got error %v, want image %s", tt.ref, err, tt.name)
			}
			want := Image{Name: tt.name, Ref: tt.ref, Tag: tt.tag, Ports: tt.ports}
			if diff := cmp.Diff(want, img); diff != "" {
				t.Errorf("Lookup(%q) (-want +got):\n%s", tt.ref, diff)
			}
		})
	}
}

// An unknown image gets Docker's first words, with Docker's ":latest"
// added to a reference without a tag, on one bounded line.
func TestCheckUnknownMessage(t *testing.T) {
	const why = " locally: meshd runs built-in images only (meshctl images lists them), or a host command given after --"
	for _, tt := range []struct{ ref, want string }{
		{"postgres", "Unable to find image 'postgres:latest'" + why},
		{"nosuch:1.2", "Unable to find image 'nosuch:1.2'" + why},
		{"foo/nginx", "Unable to find image 'foo/nginx:latest'" + why},
		{"localhost:5000/nginx", "Unable to find image 'localhost:5000/nginx:latest'" + why},
		{"nosuch@sha256:abc", "Unable to find image 'nosuch@sha256:abc'" + why},
		{"", `Unable to find image ""` + why},
		{"nginx\n", `Unable to find image "nginx\n:latest"` + why},
		{"it's", `Unable to find image "it's:latest"` + why},
		{strings.Repeat("x", 300), `Unable to find image "` + strings.Repeat("x", api.MaxQuoted) + `"…` + why},
	} {
		err := Check(tt.ref)
		if !errors.Is(err, ErrUnknown) {
			t.Errorf("Check(%q) = %v, want ErrUnknown", tt.ref, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Check(%q):\ngot  %s\nwant %s", tt.ref, err, tt.want)
		}
	}
	for _, ref := range []string{"redis", "nginx:1.14-alpine", "docker.io/library/alpine"} {
		if err := Check(ref); err != nil {
			t.Errorf("Check(%q) = %v, want nil", ref, err)
		}
	}
	if err := Check("whoami:"); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("Check(whoami:) = %v, want ErrInvalidRef", err)
	}
}

func TestLookupInvalidMessage(t *testing.T) {
	_, err := Lookup("whoami:")
	want := `invalid image reference "whoami:": empty tag; use whoami or whoami:TAG`
	if err == nil || err.Error() != want {
		t.Fatalf("Lookup(whoami:) error:\ngot  %v\nwant %s", err, want)
	}
}

// TestLookupQuotesLittle checks that an error repeats at most
// api.MaxQuoted bytes of a reference, however long.
func TestLookupQuotesLittle(t *testing.T) {
	for _, ref := range []string{strings.Repeat("r", 300), "nginx:" + strings.Repeat("t", 300), "nginx@" + strings.Repeat("d", 300)} {
		_, err := Lookup(ref)
		if err == nil || strings.Contains(err.Error(), strings.Repeat(ref[len(ref)-1:], api.MaxQuoted+1)) {
			t.Errorf("Lookup(%.10q…) = %v, want an error quoting at most %d bytes of it", ref, err, api.MaxQuoted)
		}
	}
}

func TestLookupPortsNotShared(t *testing.T) {
	a, _ := Lookup("whoami")
	a.Ports[0] = 1
	b, _ := Lookup("whoami")
	if b.Ports[0] != 80 {
		t.Fatalf("got ports %v after a caller's edit, want [80]", b.Ports)
	}
}

func TestNames(t *testing.T) {
	want := []string{"whoami", "nginx", "alpine", "busybox", "elasticsearch", "redis", "jpetazzo/trainingwheels", "centos", "ubuntu", "debian"}
	if diff := cmp.Diff(want, Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	for _, n := range Names() {
		img, err := Lookup(n)
		if err != nil || img.Name != n {
			t.Errorf("Lookup(%q) = %+v, %v; want the image %s", n, img, err, n)
		}
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		ref  string
		args []string
		want string // path, then args, space-separated; "-" when not built in
	}{
		{"containous/whoami", nil, "/whoami"},
		{"whoami", []string{"--port", "8080"}, "/whoami --port 8080"},
		{"nginx:1.14-alpine", nil, "nginx -g daemon off;"},
		{"alpine", []string{"sleep", "50000"}, "sleep 50000"},
		{"alpine:latest", nil, "/bin/sh"},
		{"busybox", nil, "sh"},
		{"elasticsearch:2", nil, "/docker-entrypoint.sh elasticsearch"},
		{"elasticsearch:2", []string{"-Des.node.name=es1"}, "/docker-entrypoint.sh -Des.node.name=es1"},
		{"redis", nil, "redis-server"},
		{"redis:7", []string{"redis-server", "--appendonly", "yes"}, "redis-server --appendonly yes"},
		{"redis", []string{"--maxmemory", "1mb"}, "redis-server --maxmemory 1mb"},
		{"jpetazzo/trainingwheels", nil, "python app.py"},
		{"centos", nil, "/bin/bash"},
		{"ubuntu", []string{"sleep", "1d"}, "sleep 1d"},
		{"debian", nil, "bash"},
		{"postgres", nil, "-"},
	}
	for _, tt := range tests {
		path, args, ok := CommandLine(tt.ref, tt.args)
		got := "-"
		if ok {
			got = strings.Join(append([]string{path}, args...), " ")
		}
		if got != tt.want {
			t.Errorf("CommandLine(%q, %q) = %q, want %q", tt.ref, tt.args, got, tt.want)
		}
	}
}

func TestRunsCommand(t *testing.T) {
	for _, tt := range []struct {
		ref  string
		args []string
		want bool
	}{
		{"alpine", []string{"sleep", "1"}, true},
		{"busybox:1.36", []string{"sh"}, true},
		{"alpine", nil, false},
		{"whoami", []string{"--port", "81"}, false},
		{"nginx", []string{"nginx"}, false},
		{"centos", []string{"ping", "-c", "1", "redis"}, true},
		{"ubuntu:22.04", []string{"bash"}, true},
		{"debian", nil, false},
		{"redis", []string{"redis-server"}, false},
		{"elasticsearch:2", []string{"elasticsearch"}, false},
		{"jpetazzo/trainingwheels", []string{"python", "app.py"}, false},
	} {
		img, err := Lookup(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.RunsCommand(tt.args); got != tt.want {
			t.Errorf("%s %q: RunsCommand = %v, want %v", tt.ref, tt.args, got, tt.want)
		}
	}
}
