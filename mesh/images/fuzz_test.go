package images

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzLookup checks that Lookup never panics and keeps its promises for any
// string: an image has a built-in Name and the Ref as given, an error is one
// line and one of the two sentinels.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{
		"", "whoami", "whoami:", "containous/whoami:latest", "traefik/whoami:v1",
		"nginx:1.14-alpine", "docker.io/library/nginx", "alpine", "busybox:1.36",
		"redis", "elasticsearch:2", "jpetazzo/trainingwheels", "library/jpetazzo/trainingwheels", "postgres", "localhost:5000/nginx", "nginx@sha256:00", ":", "@", "/", "a/b/c:d@e",
		"library/", "docker.io/", "nginx\x00", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		img, err := Lookup(ref)
		if err != nil {
			if !errors.Is(err, ErrUnknown) && !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("Lookup(%q) error %v is neither ErrUnknown nor ErrInvalidRef", ref, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("Lookup(%q) error spans lines: %q", ref, err)
			}
			return
		}
		if !slices.Contains(Names(), img.Name) {
			t.Fatalf("Lookup(%q).Name = %q, not a built-in %v", ref, img.Name, Names())
		}
		if img.Ref != ref {
			t.Fatalf("Lookup(%q).Ref = %q, want the input", ref, img.Ref)
		}
		if !strings.Contains(ref, img.Name) {
			t.Fatalf("Lookup(%q) = %q, a name the reference does not contain", ref, img.Name)
		}
	})
}
