package manager

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

func TestStateIsRedacted(t *testing.T) {
	const secret = "SWMTKN-1-topsecret0123456789"
	st := State{ClusterID: "c1", WorkerToken: secret, ManagerToken: secret, GossipKeys: [][]byte{[]byte("topsecret-gossip-key")},
		CAKey: []byte("topsecret-ca-key")}
	st.init()
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "state", st)
	outs := []string{buf.String()}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		outs = append(outs, fmt.Sprintf(f, st), fmt.Sprintf(f, &st))
	}
	for _, out := range outs {
		if strings.Contains(out, "topsecret") || !strings.Contains(out, api.Redacted) {
			t.Errorf("state formatted as %s: want its secrets redacted", out)
		}
	}
}
