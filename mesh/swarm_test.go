package mesh

import (
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// legacyStateFile is a state file as a single manager wrote it before raft.
const legacyStateFile = `{"ClusterID":"c0ffee","Token":"SWMTKN-1-oldtoken0123456789abcdef","ManagerID":"m1",
 "Nodes":{"m1":{"ID":"m1","Hostname":"node1","Role":"manager","Addr":"192.168.33.10"},
          "w2":{"ID":"w2","Hostname":"node2","Role":"worker","Addr":"192.168.33.11"}},
 "Networks":{"n1":{"ID":"n1","Name":"ovnet","Subnet":"10.0.0.0/24"}},
 "Services":{"s1":{"ID":"s1","Name":"www","Replicas":2}},"Tasks":{},"IPAM":null}`

func TestLegacyStateMigrates(t *testing.T) {
	st, managerID, err := legacyToState([]byte(legacyStateFile), "192.168.33.10:2377")
	if err != nil {
		t.Fatal(err)
	}
	if managerID != "m1" || st.ClusterID != "c0ffee" || st.Services["s1"].Name != "www" || st.Networks["n1"].Subnet != "10.0.0.0/24" {
		t.Errorf("objects lost in the migration: manager %q, %+v", managerID, st)
	}
	if st.WorkerToken != "SWMTKN-1-oldtoken0123456789abcdef" || string(st.GossipKey) != string(GossipKey(st.WorkerToken)) {
		t.Error("the workers' token and gossip key must stay what they were")
	}
	if st.ManagerToken == st.WorkerToken || api.CheckToken(st.ManagerToken) != nil {
		t.Errorf("manager token %q", st.ManagerToken)
	}
	if m := st.Nodes["m1"]; m.Role != api.RoleManager || m.APIAddr != "192.168.33.10:2377" || st.NodeSecrets["m1"] == "" {
		t.Errorf("the manager's record: %+v, secret %q", m, st.NodeSecrets["m1"])
	}
	if _, ok := st.NodeSecrets["w2"]; ok {
		t.Error("a worker got a secret it was never given")
	}
	for _, bad := range []string{`{`, `{"ClusterID":"c"}`, `{"ClusterID":"c","Token":"t"}`} {
		if _, _, err := legacyToState([]byte(bad), "x:2377"); err == nil {
			t.Errorf("legacy state %s accepted", bad)
		} else if strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("error on more than one line: %v", err)
		}
	}
}
