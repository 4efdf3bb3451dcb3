package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/meshd/meshd/mesh/api"
)

// FuzzDecodeRequest feeds any body to the cluster port's body cap and the
// strict decoder of service and network creates, and checks their
// promises: never a panic; a body over the cap is a 413; a refusal is a
// one-line 400; an accepted body is one JSON value (or none) whose fields
// are within mesh/api's limits, and re-encodes to what its re-encoding
// does. `go test` runs the seeds only; go test -fuzz
// FuzzDecodeRequest explores.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `{"Name":"www","Image":"whoami"}`,
		`{"Name":"www","Image":"whoami"} trailing`, `{"Name":"www"}{"Name":"x"}`, `{"Name":"www"} ` + "\n",
		`{"Name":"www","Bogus":1}`, `{"Name":"` + strings.Repeat("n", 64) + `"}`,
		`{"Name":"www","Args":["sh","-c","sleep 1"],"Replicas":3,"Networks":[{"Target":"ovnet","Aliases":["a","b"]}],"Ports":[{"PublishedPort":8888,"TargetPort":80}]}`,
		`{"Name":"ovnet","Subnet":"10.0.9.0/24","AuxAddresses":{"h":"10.0.9.2"}}`,
		`{"Name":"es","Image":"elasticsearch:2","Networks":[{"Network":"dev","Aliases":["es"],"IP":"172.19.0.9"}],"Publish":[{"Proto":"tcp","Port":9200}],"PublishAll":true}`,
		`{"Container":"lone","Attach":{"Aliases":["box"]}}`,
		`{"Name":"x","Replicas":1e999}`, `{"Name":"\u0000\ud800"}`, `{"Name":1}`, `{"Networks":[{"Aliases":null}]}`,
		`{"Name":"x"` + strings.Repeat(" ", 100), strings.Repeat("[", 10000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		decodeBoth := LimitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw := new(bytes.Buffer)
			_, _ = raw.ReadFrom(r.Body)
			checkDecode(t, raw.Bytes(), &api.ServiceCreate{})
			checkDecode(t, raw.Bytes(), &api.NetworkCreate{})
			checkDecode(t, raw.Bytes(), &api.ContainerCreate{})
			checkDecode(t, raw.Bytes(), &api.NetworkConnect{})
			w.WriteHeader(http.StatusNoContent)
		}), maxBody)
		rec := httptest.NewRecorder()
		decodeBoth.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/services", bytes.NewReader(body)))
		if want := http.StatusNoContent; len(body) > maxBody {
			want = http.StatusRequestEntityTooLarge
			if rec.Code != want {
				t.Fatalf("%d-byte body: status %d, want %d", len(body), rec.Code, want)
			}
		}
	})
}

// checkDecode decodes body into v (a pointer to a zero request) and checks
// decodeJSON's promises.
func checkDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	err := decodeJSON(bytes.NewReader(body), v)
	if err != nil {
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
			t.Fatalf("decode %T: %v is not a 400", v, err)
		}
		if strings.ContainsAny(se.Msg, "\r\n") || len(se.Msg) > 512 {
			t.Fatalf("decode %T: the refusal is %d bytes or several lines: %.600q", v, len(se.Msg), se.Msg)
		}
		return
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && !json.Valid(trimmed) {
		t.Fatalf("decode %T accepted %q, which is not one JSON value", v, body)
	}
	if c, ok := v.(interface{ CheckSizes() error }); ok && c.CheckSizes() != nil {
		t.Fatalf("decode %T accepted fields over their limits: %v", v, c.CheckSizes())
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode %T: %v", v, err)
	}
	w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if err := decodeJSON(bytes.NewReader(again), w); err != nil {
		t.Fatalf("decode of the re-encoded %T %s: %v", v, again, err)
	}
	// Compared encoded: an empty list and none encode alike (omitempty).
	if twice, _ := json.Marshal(w); !bytes.Equal(again, twice) {
		t.Fatalf("%T re-encodes as %s, then as %s", v, again, twice)
	}
}
