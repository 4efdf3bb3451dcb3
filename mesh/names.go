package mesh

import (
	"regexp"
	"slices"
)

// objectName is docker's rule for network and service names.
var objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

func checkName(kind, name string) error {
	if !objectName.MatchString(name) {
		return invalid("invalid %s name %q: want letters, digits, '_', '.', '-', starting with a letter or digit, at most 63", kind, name)
	}
	return nil
}

// resolve finds an object by ID, unique name, or unique ID prefix.
func resolve[T any](kind string, objs map[string]T, name func(T) string, ref string) (string, error) {
	if ref == "" {
		return "", invalid("empty %s reference", kind)
	}
	if _, ok := objs[ref]; ok {
		return ref, nil
	}
	var byName, byPrefix []string
	for id, o := range objs {
		if name(o) == ref {
			byName = append(byName, id)
		}
		if len(ref) >= 3 && len(id) > len(ref) && id[:len(ref)] == ref {
			byPrefix = append(byPrefix, id)
		}
	}
	for _, c := range [][]string{byName, byPrefix} {
		switch len(c) {
		case 0:
			continue
		case 1:
			return c[0], nil
		default:
			return "", conflict("%s %q is ambiguous: %d match", kind, ref, len(c))
		}
	}
	return "", notFound("%s %s not found", kind, ref)
}

// sortedKeys returns a set's keys in order, for stable allocation.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
