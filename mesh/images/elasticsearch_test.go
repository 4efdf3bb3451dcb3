package images

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestElasticsearchRoot(t *testing.T) {
	r := startImage(t, "elasticsearch:2", "elasticsearch") // args are ignored
	if r.asked != ":9200" {
		t.Errorf("elasticsearch asked to listen on %q, want :9200", r.asked)
	}
	var first string
	for i, path := range []string{"/", "/?pretty", "/"} {
		code, hdr, body := fetch(t, "GET", r.url+path)
		ctype := hdr.Get("Content-Type")
		if code != 200 || ctype != "application/json; charset=UTF-8" {
			t.Fatalf("GET %s: %d %q, want 200 application/json; charset=UTF-8", path, code, ctype)
		}
		var root struct {
			Name        string `json:"name"`
			ClusterName string `json:"cluster_name"`
			ClusterUUID string `json:"cluster_uuid"`
			Version     struct {
				Number        string `json:"number"`
				LuceneVersion string `json:"lucene_version"`
			} `json:"version"`
			Tagline string `json:"tagline"`
		}
		if err := json.Unmarshal([]byte(body), &root); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
		if !slices.Contains(esNames, root.Name) || root.ClusterName != "elasticsearch" || len(root.ClusterUUID) != 22 ||
			root.Version.Number != "2.4.6" || root.Version.LuceneVersion != "5.5.4" || root.Tagline != "You Know, for Search" {
			t.Errorf("GET %s: got %+v", path, root)
		}
		// Elasticsearch 2's pretty printing, as the slides show it.
		for _, want := range []string{"{\n  \"name\" : \"" + root.Name + "\",\n", "\n  \"version\" : {\n    \"number\" : \"2.4.6\",\n", "\n}\n"} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: body lacks %q:\n%s", path, want, body)
			}
		}
		if i == 0 {
			first = body
		} else if body != first {
			t.Errorf("GET %s changed between requests:\n%s\nthen\n%s", path, first, body)
		}
	}
	if code, _, body := fetch(t, "HEAD", r.url+"/"); code != 200 || body != "" {
		t.Errorf("HEAD /: %d %q, want 200 and no body", code, body)
	}
	if got, want := r.stdout.String(), "elasticsearch: listening on :"+portOf(t, r.url)+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

// TestElasticsearchNames checks that each node picks its own name, from
// the list: 20 nodes all named alike would mean no pick at all.
func TestElasticsearchNames(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		es := newElasticsearch().(*elasticsearch)
		var root struct{ Name string }
		if err := json.Unmarshal(es.root, &root); err != nil || !slices.Contains(esNames, root.Name) {
			t.Fatalf("root %s: name %q (%v), want one of esNames", es.root, root.Name, err)
		}
		seen[root.Name] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 nodes got the names %v, want a random pick", seen)
	}
}

func TestElasticsearchPaths(t *testing.T) {
	r := startImage(t, "elasticsearch")
	tests := []struct {
		method, path string
		code         int
		want         map[string]any // top-level fields of the JSON answer
		wantErr      map[string]any // fields of its "error" object
	}{
		{method: "GET", path: "/_cluster/health", code: 200, want: map[string]any{
			"cluster_name": "elasticsearch", "status": "green", "timed_out": false, "number_of_nodes": 1.0,
			"number_of_data_nodes": 1.0, "active_shards": 0.0, "active_shards_percent_as_number": 100.0}},
		{method: "GET", path: "/_cluster/health/", code: 200, want: map[string]any{"status": "green"}},
		{method: "GET", path: "/_cluster/health?pretty", code: 200, want: map[string]any{"status": "green"}},
		{method: "GET", path: "/twitter", code: 404, want: map[string]any{"status": 404.0},
			wantErr: map[string]any{"type": "index_not_found_exception", "reason": "no such index", "index": "twitter", "resource.id": "twitter"}},
		{method: "GET", path: "/twitter/_search?q=x", code: 404, wantErr: map[string]any{"index": "twitter"}},
		{method: "GET", path: "/" + strings.Repeat("i", 300), code: 404, wantErr: map[string]any{"index": strings.Repeat("i", esMaxIndexLen)}},
		{method: "POST", path: "/", code: 405, want: map[string]any{"status": 405.0}, wantErr: map[string]any{"type": "illegal_argument_exception"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path[:min(len(tt.path), 30)], func(t *testing.T) {
			code, hdr, body := fetch(t, tt.method, r.url+tt.path)
			ctype := hdr.Get("Content-Type")
			if code != tt.code || ctype != "application/json; charset=UTF-8" {
				t.Errorf("got %d %q, want %d application/json; charset=UTF-8", code, ctype, tt.code)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v in %s", err, body)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v in %s", k, got[k], v, body)
				}
			}
			if tt.wantErr == nil {
				return
			}
			e, _ := got["error"].(map[string]any)
			causes, _ := e["root_cause"].([]any)
			if len(causes) != 1 {
				t.Fatalf("error.root_cause %v, want one cause in %s", e["root_cause"], body)
			}
			for k, v := range tt.wantErr {
				if e[k] != v || causes[0].(map[string]any)[k] != v {
					t.Errorf("error.%s = %#v, root cause's %#v, want %#v", k, e[k], causes[0].(map[string]any)[k], v)
				}
			}
		})
	}
}
