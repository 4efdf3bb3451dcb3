package images

import (
	"strconv"
	"strings"
	"testing"
)

func TestNginx(t *testing.T) {
	r := startImage(t, "nginx:1.14-alpine", "nginx", "-g", "daemon off;") // args are ignored
	if r.asked != ":80" {
		t.Errorf("nginx asked to listen on %q, want :80", r.asked)
	}
	tests := []struct {
		method, path string
		code         int
		contains     []string
	}{
		{method: "GET", path: "/", code: 200, contains: []string{"<title>Welcome to nginx!</title>", "<h1>Welcome to nginx!</h1>"}},
		{method: "GET", path: "/index.html", code: 200, contains: []string{"<h1>Welcome to nginx!</h1>"}},
		{method: "GET", path: "/?from=client", code: 200, contains: []string{"<h1>Welcome to nginx!</h1>"}},
		{method: "HEAD", path: "/", code: 200},
		{method: "GET", path: "/nope", code: 404, contains: []string{"<title>404 Not Found</title>", "<center>nginx</center>"}},
		{method: "GET", path: "/index.htm", code: 404, contains: []string{"404 Not Found"}},
		{method: "POST", path: "/", code: 405, contains: []string{"405 Not Allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, hdr, body := fetch(t, tt.method, r.url+tt.path)
			if code != tt.code {
				t.Errorf("got status %d, want %d", code, tt.code)
			}
			if got := hdr.Get("Server"); got != "nginx" {
				t.Errorf("got Server %q, want nginx", got)
			}
			if got := hdr.Get("Content-Type"); got != "text/html" {
				t.Errorf("got Content-Type %q, want text/html", got)
			}
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			if tt.method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD body %q, want none", body)
				}
				if got := hdr.Get("Content-Length"); got != strconv.Itoa(len(nginxPage)) {
					t.Errorf("HEAD Content-Length %s, want %d", got, len(nginxPage))
				}
			}
		})
	}
	if got, want := r.stdout.String(), "nginx: listening on :"+portOf(t, r.url)+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}
