package images

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
)

// esNames are the node names the elasticsearch stand-in picks from.
// Elasticsearch 2 named each node after a random Marvel character; this
// list is our own short selection in that style.
var esNames = []string{
	"Abomination", "Banshee", "Black Bolt", "Blizzard", "Cable", "Crystal",
	"Dazzler", "Domino", "Electro", "Firestar", "Gambit", "Havok",
	"Iceman", "Jigsaw", "Jubilee", "Karnak", "Longshot", "Mister Sinister",
	"Moondragon", "Nightcrawler", "Nova", "Polaris", "Quicksilver", "Rogue",
	"Sandman", "Shocker", "Storm", "Thunderbird", "Vulture", "Wolfsbane",
}

// esMaxIndexLen is Elasticsearch's limit on an index name, in bytes; an
// error names at most that much of the path.
const esMaxIndexLen = 255

// elasticsearch answers the two requests the tutorials make of an
// Elasticsearch 2 node, GET / and GET /_cluster/health; it stores nothing.
type elasticsearch struct {
	root []byte // GET /'s answer: fixed for the life of the task
}

func newElasticsearch() http.Handler {
	var b [16]byte
	_, _ = rand.Read(b[:])                             // never fails (crypto/rand panics rather)
	uuid := base64.RawURLEncoding.EncodeToString(b[:]) // 22 characters, as Elasticsearch's
	root := fmt.Sprintf(`{
  "name" : %s,
  "cluster_name" : "elasticsearch",
  "cluster_uuid" : %q,
  "version" : {
    "number" : "2.4.6",
    "build_hash" : "5376dca9f70f3abef96a77f4bb22720ace8240fd",
    "build_timestamp" : "2017-07-18T12:17:44Z",
    "build_snapshot" : false,
    "lucene_version" : "5.5.4"
  },
  "tagline" : "You Know, for Search"
}
`, jsonString(esNames[mrand.IntN(len(esNames))]), uuid)
	return &elasticsearch{root: []byte(root)}
}

// esHealth is GET /_cluster/health's answer for a node alone with no
// index, in Elasticsearch's field order.
type esHealth struct {
	ClusterName                 string      `json:"cluster_name"`
	Status                      string      `json:"status"`
	TimedOut                    bool        `json:"timed_out"`
	NumberOfNodes               int         `json:"number_of_nodes"`
	NumberOfDataNodes           int         `json:"number_of_data_nodes"`
	ActivePrimaryShards         int         `json:"active_primary_shards"`
	ActiveShards                int         `json:"active_shards"`
	RelocatingShards            int         `json:"relocating_shards"`
	InitializingShards          int         `json:"initializing_shards"`
	UnassignedShards            int         `json:"unassigned_shards"`
	DelayedUnassignedShards     int         `json:"delayed_unassigned_shards"`
	NumberOfPendingTasks        int         `json:"number_of_pending_tasks"`
	NumberOfInFlightFetch       int         `json:"number_of_in_flight_fetch"`
	TaskMaxWaitingInQueueMillis int         `json:"task_max_waiting_in_queue_millis"`
	ActiveShardsPercent         json.Number `json:"active_shards_percent_as_number"`
}

var esHealthy = esHealth{ClusterName: "elasticsearch", Status: "green", NumberOfNodes: 1, NumberOfDataNodes: 1, ActiveShardsPercent: "100.0"}

func (es *elasticsearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		esError(w, http.StatusMethodNotAllowed, "illegal_argument_exception",
			fmt.Sprintf("method [%s] is not supported by this stand-in, only GET and HEAD", r.Method), nil)
		return
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "":
		_, _ = w.Write(es.root)
	case "/_cluster/health":
		body, _ := json.Marshal(esHealthy) // a fixed struct: cannot fail
		_, _ = w.Write(body)
	default:
		// Elasticsearch reads /NAME/… as an index, and there is none.
		index, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(index) > esMaxIndexLen {
			index = index[:esMaxIndexLen]
		}
		esError(w, http.StatusNotFound, "index_not_found_exception", "no such index", map[string]string{
			"resource.type": "index_or_alias", "resource.id": index, "index": index})
	}
}

// esError writes an error in Elasticsearch 2's shape:
// {"error":{"root_cause":[{…}],"type":…,"reason":…,…},"status":code}.
func esError(w http.ResponseWriter, code int, typ, reason string, extra map[string]string) {
	cause := map[string]string{"type": typ, "reason": reason}
	for k, v := range extra {
		cause[k] = v
	}
	top := map[string]any{"root_cause": []map[string]string{cause}}
	for k, v := range cause {
		top[k] = v
	}
	body, _ := json.Marshal(map[string]any{"error": top, "status": code}) // strings only: cannot fail
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
