package manager

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/meshd/meshd/mesh/api"
)

// Placement constraints follow swarmkit's (manager/constraint): KEY==VALUE
// or KEY!=VALUE, the key and value trimmed, values compared without
// regard to case, and a label the node lacks compared as "" (so != holds).
// The syntax errors are swarmkit's words, which docker prints. Unlike
// swarmkit, a key meshd cannot match (node.platform.os, engine.labels.*)
// is refused rather than accepted and never satisfied: a service that
// silently stays pending helps nobody.

// constraintKey and constraintValue are swarmkit's patterns.
var (
	constraintKey   = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	constraintValue = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`)
)

// nodeLabelPrefix starts the keys that match a node's labels.
const nodeLabelPrefix = "node.labels."

// constraint is one parsed expression.
type constraint struct {
	key   string // lower case, as swarmkit compares it
	label string // for node.labels.KEY: KEY, as given
	equal bool   // == rather than !=
	value string
}

// parseConstraints checks a service's constraints, with swarmkit's errors.
func parseConstraints(exprs []string) ([]constraint, error) {
	var out []constraint
	for _, e := range exprs {
		c, err := parseConstraint(e)
		if err != nil {
			return nil, api.Invalid("%v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseConstraint(e string) (constraint, error) {
	// The first operator found wins, == before !=, as swarmkit's loop.
	for _, op := range []string{"==", "!="} {
		k, v, ok := strings.Cut(e, op)
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !constraintKey.MatchString(k) {
			return constraint{}, fmt.Errorf("key '%s' is invalid", api.Clip(k))
		}
		if !constraintValue.MatchString(v) {
			return constraint{}, fmt.Errorf("value '%s' is invalid", api.Clip(v))
		}
		c := constraint{key: strings.ToLower(k), equal: op == "==", value: v}
		switch {
		case c.key == "node.id", c.key == "node.hostname", c.key == "node.role":
		case strings.HasPrefix(c.key, nodeLabelPrefix) && len(k) > len(nodeLabelPrefix):
			c.key, c.label = nodeLabelPrefix, k[len(nodeLabelPrefix):]
		default:
			return constraint{}, fmt.Errorf("constraint key '%s' is not supported: want node.id, node.hostname, node.role or node.labels.KEY", api.Clip(k))
		}
		return c, nil
	}
	return constraint{}, fmt.Errorf("constraint expected one operator from ==, !=")
}

// matches says whether node n satisfies c.
func (c constraint) matches(n api.Node) bool {
	var have string
	switch c.key {
	case "node.id":
		have = n.ID
	case "node.hostname":
		have = n.Hostname
	case "node.role":
		have = n.Role
	case nodeLabelPrefix:
		have = n.Labels[c.label]
	}
	return strings.EqualFold(have, c.value) == c.equal
}

// fits says whether node n satisfies every constraint of svc. The
// constraints were checked when the service was made; one that no longer
// parses (it cannot happen) fits no node.
func fits(svc api.Service, n api.Node) bool {
	cs, err := parseConstraints(svc.Constraints)
	if err != nil {
		return false
	}
	for _, c := range cs {
		if !c.matches(n) {
			return false
		}
	}
	return true
}

// schedulable says whether a node takes new tasks: Ready and Active.
func schedulable(n api.Node) bool {
	return n.Availability == api.AvailabilityActive && n.Status != api.StatusDown
}

// checkLabels checks the labels a node update sets and the node's
// labels after it, so that nothing is kept on bad input.
func checkLabels(add map[string]string, rm []string, after map[string]string) error {
	for k := range add {
		if k == "" {
			return api.Invalid("invalid label %s: want KEY=VALUE with a KEY", api.Quote("="+add[k]))
		}
	}
	for _, k := range rm {
		if k == "" {
			return api.Invalid("invalid label to remove: empty key")
		}
	}
	if len(after) > api.MaxLabels {
		return api.Invalid("too many labels: %d, at most %d", len(after), api.MaxLabels)
	}
	return nil
}
