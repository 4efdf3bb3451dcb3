package manager

import (
	"fmt"
	"log/slog"

	"github.com/meshd/meshd/mesh/api"
)

// String sums the state up, without its tokens, CA key and gossip
// key: a state formatted with %v or %+v, in an error or a log, shows no
// secret.
func (s State) String() string {
	return fmt.Sprintf("State{Version:%d ClusterID:%s Nodes:%d Networks:%d Services:%d Tasks:%d secrets:%s}",
		s.Version, s.ClusterID, len(s.Nodes), len(s.Networks), len(s.Services), len(s.Tasks), api.Redacted)
}

// GoString is String, for %#v.
func (s State) GoString() string { return s.String() }

// LogValue logs the summary of String.
func (s State) LogValue() slog.Value { return slog.StringValue(s.String()) }
