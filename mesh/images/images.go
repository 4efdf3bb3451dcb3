package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// Image is a built-in image, as resolved by [Lookup].
type Image struct {
	// Name is the canonical name, one of [Names]: "whoami", "nginx",
	// "redis", "jpetazzo/trainingwheels", … [Run] dispatches on it.
	Name string
	// Ref is the reference as the user typed it, e.g. "nginx:1.14-alpine";
	// it is what `service ps` shows in the IMAGE column.
	Ref string
	// Tag is the reference's tag, "" when it has none.
	Tag string
	// Ports are the TCP ports the image listens on when run without
	// arguments, e.g. [80]; empty for an idle image. Arguments such as
	// whoami's --port can change the real port; this is for docs and inspect.
	Ports []int
}

// Errors returned by [Lookup], for errors.Is. They are not package-prefixed
// because their text is the start of the line meshctl prints.
var (
	// ErrUnknown means the name is not one of the built-in images.
	ErrUnknown = errors.New("unknown image")
	// ErrInvalidRef means the name is built in but the rest of the
	// reference (tag, digest) is malformed or unsupported.
	ErrInvalidRef = errors.New("invalid image reference")
)

// builtin describes one built-in image: the canonical name, the other
// repository names that resolve to it, and its default ports.
type builtin struct {
	name    string
	aliases []string
	// official images are also accepted with Docker Hub's "library/"
	// prefix, as Docker itself normalises "nginx" to
	// "docker.io/library/nginx".
	official bool
	ports    []int
	// entrypoint and cmd are the real image's, as docker inspect shows
	// them: the service's arguments follow the entrypoint, or replace the
	// cmd when there is none.
	entrypoint, cmd []string
}

// builtins is the registry, in the order help texts list it.
var builtins = []builtin{
	{name: "whoami", aliases: []string{"containous/whoami", "traefik/whoami"}, ports: []int{80}, entrypoint: []string{"/whoami"}},
	{name: "nginx", official: true, ports: []int{80}, cmd: []string{"nginx", "-g", "daemon off;"}},
	{name: "alpine", official: true, cmd: []string{"/bin/sh"}},
	{name: "busybox", official: true, cmd: []string{"sh"}},
	// The real elasticsearch also listens on 9300 (transport), which a
	// single node without a cluster does not need.
	{name: "elasticsearch", official: true, ports: []int{9200}, entrypoint: []string{"/docker-entrypoint.sh"}, cmd: []string{"elasticsearch"}},
	// Docker's redis image runs "docker-entrypoint.sh redis-server"; here
	// there is no entrypoint script, and redis-server is what runs,
	// Debian's (see [Program]) or the built-in one.
	{name: "redis", official: true, ports: []int{6379}, entrypoint: []string{"redis-server"}},
	{name: "jpetazzo/trainingwheels", ports: []int{5000}, cmd: []string{"python", "app.py"}},
	{name: "centos", official: true, cmd: []string{"/bin/bash"}},
	{name: "ubuntu", official: true, cmd: []string{"/bin/bash"}},
	{name: "debian", official: true, cmd: []string{"bash"}},
}

// CommandLine is the command a container of image ref runs with the
// service's args, as Docker composes it from the image's entrypoint and
// cmd: what docker ps shows as COMMAND and docker inspect as Path and
// Args. ok is false for an image that is not built in. For redis it is
// "redis-server" and its arguments whether or not the node has Debian's
// redis-server, as it is the command on every node.
func CommandLine(ref string, args []string) (path string, argv []string, ok bool) {
	img, err := Lookup(ref)
	if err != nil {
		return "", nil, false
	}
	b, _ := find(img.Name)
	if img.Name == "redis" {
		args = redisServerArgs(args)
	}
	line := append(slices.Clone(b.entrypoint), args...)
	if len(args) == 0 {
		line = append(line, b.cmd...)
	}
	if len(line) == 0 {
		return "", []string{}, true
	}
	return line[0], append([]string{}, line[1:]...), true
}

// RunsCommand says whether a task of img with args runs args as a
// command rather than the image's own program: the shell images (alpine,
// busybox, centos, ubuntu, debian) stand for a userland, so "alpine sleep
// 50000" runs sleep, as Docker's would.
func (img Image) RunsCommand(args []string) bool {
	return len(args) > 0 && isShell(img.Name)
}

// Idles says whether a task of img with args has nothing to run: a shell
// image given no command, which holds its namespaces until it is stopped,
// so that there is a task to exec into.
func (img Image) Idles(args []string) bool {
	return len(args) == 0 && isShell(img.Name)
}

// IdleCommand is the command line an idle task of image ref runs where an
// init reaps it (mesh/task runs it under tini): sleep infinity, BusyBox's
// for alpine and busybox as their commands are.
func IdleCommand(ref string) []string {
	return Command(ref, []string{"sleep", "infinity"})
}

// isShell reports whether name is one of the images that are only a
// userland: without a command they idle, with one they run it.
func isShell(name string) bool {
	switch name {
	case "alpine", "busybox", "centos", "ubuntu", "debian":
		return true
	}
	return false
}

// maxTagLen is Docker's limit on a tag's length.
const maxTagLen = 128

// Names returns the canonical names of the built-in images, in the order
// help texts list them. The slice is the caller's.
func Names() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// Lookup resolves a reference such as "containous/whoami", "nginx:1.14-alpine"
// or "docker.io/library/alpine:3.19" to a built-in image.
//
// Accepted: a built-in name or alias, optionally prefixed by "docker.io/"
// (and, for the official images, which all are but whoami and
// jpetazzo/trainingwheels, "library/"), optionally followed by ":TAG" where TAG is any Docker-valid tag
// ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}); the tag is not interpreted, every
// tag runs the same program. Names are case-sensitive and not trimmed, as
// in Docker. An empty tag ("whoami:") is rejected with [ErrInvalidRef], as
// Docker rejects it ("invalid reference format"), and so is a digest
// ("nginx@sha256:…"): a built-in image has no digest to match. Every other
// name, including "", fails with [ErrUnknown] and Docker's one-line
// message, "Unable to find image 'postgres:latest' locally: …" (see
// [Check]). Lookup never panics, whatever the string.
func Lookup(ref string) (Image, error) {
	name, _, hasDigest := strings.Cut(ref, "@")
	repo, tag, hasTag := splitTag(name)
	b, ok := find(repo)
	if !ok {
		return Image{}, unknown(ref)
	}
	switch {
	case hasDigest:
		return Image{}, fmt.Errorf("%w %s: digests are not supported, built-in images have none; use %s or %s:TAG", ErrInvalidRef, api.Quote(ref), b.name, b.name)
	case hasTag && tag == "":
		return Image{}, fmt.Errorf("%w %s: empty tag; use %s or %s:TAG", ErrInvalidRef, api.Quote(ref), b.name, b.name)
	case hasTag && !validTag(tag):
		return Image{}, fmt.Errorf("%w %s: bad tag %s: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", ErrInvalidRef, api.Quote(ref), api.Quote(tag))
	}
	return Image{Name: b.name, Ref: ref, Tag: tag, Ports: append([]int(nil), b.ports...)}, nil
}

// splitTag splits "repo:tag" at the last colon after the last slash, so a
// registry port ("localhost:5000/nginx") is not taken for a tag.
func splitTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i < strings.LastIndexByte(ref, '/') {
		return ref, "", false
	}
	return ref[:i], ref[i+1:], true
}

// find returns the built-in whose name or alias is repo, after stripping
// the Docker Hub prefixes Docker itself would add.
func find(repo string) (builtin, bool) {
	repo = strings.TrimPrefix(repo, "docker.io/")
	library := strings.HasPrefix(repo, "library/")
	repo = strings.TrimPrefix(repo, "library/")
	for _, b := range builtins {
		if library && !b.official {
			continue
		}
		if repo == b.name {
			return b, true
		}
		for _, a := range b.aliases {
			if !library && repo == a {
				return b, true
			}
		}
	}
	return builtin{}, false
}

// validTag reports whether tag matches Docker's [\w][\w.-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > maxTagLen || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Check returns nil when ref names a built-in image, else [Lookup]'s
// error: for a name that is not built in, Docker's "Unable to find image
// 'nosuch:latest' locally", which is where a pull would start, then why
// meshd does not pull.
func Check(ref string) error {
	_, err := Lookup(ref)
	return err
}

// unknownError is [ErrUnknown] for one reference.
type unknownError struct{ ref string }

func unknown(ref string) error { return &unknownError{ref: ref} }

// Error is one line: `Unable to find image 'postgres:latest' locally:
// meshd runs built-in images only (meshctl images lists them), or a host
// command given after --`.
func (e *unknownError) Error() string {
	return "Unable to find image " + quoteRef(normalizeRef(e.ref)) +
		" locally: meshd runs built-in images only (meshctl images lists them), or a host command given after --"
}

func (e *unknownError) Is(target error) bool { return target == ErrUnknown }

// normalizeRef adds the tag Docker adds to a reference without one:
// "nosuch" is "nosuch:latest". A digest is left as it is, as in Docker.
func normalizeRef(ref string) string {
	if ref == "" || strings.Contains(ref, "@") {
		return ref
	}
	if _, _, hasTag := splitTag(ref); hasTag {
		return ref
	}
	return ref + ":latest"
}

// quoteRef quotes ref as Docker does, 'nosuch:latest', unless it holds
// something that would not read back (a quote, a blank, a control or
// non-ASCII byte) or is long: then it is Go-quoted and clipped, so the
// message stays one bounded line.
func quoteRef(ref string) string {
	if c := api.Clip(ref); c != ref || strings.ContainsRune(ref, '\'') {
		return api.Quote(ref)
	}
	return "'" + ref + "'"
}

// ID is a built-in image's ID, as `meshctl images` shows it: "sha256:"
// and the SHA-256 of its canonical name. A built-in has no layers to
// hash; its name is what identifies the program it runs.
func ID(name string) string {
	sum := sha256.Sum256([]byte("meshd built-in image " + name))
	return "sha256:" + hex.EncodeToString(sum[:])
}
