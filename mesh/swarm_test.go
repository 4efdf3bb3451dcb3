package mesh

import (
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/mesh/api"
)

// legacyStateFile is a state file as a single manager wrote it before raft.
const legacyStateFile = `{"ClusterID":"c0ffee","Token":"SWMTKN-1-oldtoken0123456789abcdef","ManagerID":"m1",
 "Nodes":{"m1":{"ID":"m1","Hostname":"node1","Role":"manager","Addr":"192.168.33.10"},
          "w2":{"ID":"w2","Hostname":"node2","Role":"worker","Addr":"192.168.33.11"}},
 "Networks":{"n1":{"ID":"n1","Name":"ovnet","Subnet":"10.0.0.0/24"}},
 "Services":{"s1":{"ID":"s1","Name":"www","Replicas":2}},"Tasks":{},"IPAM":null}`

func TestLegacyStateMigrates(t *testing.T) {
	st, managerID, err := legacyToState([]byte(legacyStateFile), "192.168.33.10:2377", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if managerID != "m1" || st.ClusterID != "c0ffee" || st.Services["s1"].Name != "www" || st.Networks["n1"].Subnet != "10.0.0.0/24" {
		t.Errorf("objects lost in the migration: manager %q, %+v", managerID, st)
	}
	if len(st.GossipKeys) != 1 || string(st.GossipKeys[0]) != string(GossipKey("SWMTKN-1-oldtoken0123456789abcdef")) {
		t.Error("the workers' gossip key must stay what it was")
	}
	root, err := st.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{st.WorkerToken, st.ManagerToken} {
		if digest, _, err := api.ParseJoinToken(tok); err != nil || digest != root.Digest() {
			t.Errorf("token %q does not name the new CA: %v", tok, err)
		}
	}
	if st.ManagerToken == st.WorkerToken {
		t.Error("one token for both roles")
	}
	if m := st.Nodes["m1"]; m.Role != api.RoleManager || m.APIAddr != "192.168.33.10:2377" {
		t.Errorf("the manager's record: %+v", m)
	}
	for _, bad := range []string{`{`, `{"ClusterID":"c"}`, `{"ClusterID":"c","Token":"t"}`} {
		if _, _, err := legacyToState([]byte(bad), "x:2377", time.Now()); err == nil {
			t.Errorf("legacy state %s accepted", bad)
		} else if strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("error on more than one line: %v", err)
		}
	}
}
