package images

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// nginxPage is the stand-in's default page. The title and heading are
// nginx's, so `curl … | grep Welcome` reads as in the tutorials; the text is
// our own.
const nginxPage = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>This is the default page of meshd's built-in nginx stand-in: the task is
up and the request reached it.</p>
<p>meshd runs no real web server; it serves this page on port 80 so that the
routing mesh has something to show.</p>
</body>
</html>
`

// nginx serves [nginxPage] at / and /index.html and nginx-shaped errors
// elsewhere, always with "Server: nginx".
type nginx struct {
	modTime time.Time // Last-Modified of the page: when the server started
}

func newNginx(start time.Time) http.Handler {
	return &nginx{modTime: start.Truncate(time.Second)}
}

func (n *nginx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "nginx")
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		nginxError(w, http.StatusMethodNotAllowed, "405 Not Allowed")
	case r.URL.Path != "/" && r.URL.Path != "/index.html":
		nginxError(w, http.StatusNotFound, "404 Not Found")
	default:
		w.Header().Set("Content-Type", "text/html")
		// ServeContent adds Last-Modified, Accept-Ranges and
		// Content-Length, and handles HEAD and conditional requests, as
		// nginx does for a static file.
		http.ServeContent(w, r, "index.html", n.modTime, strings.NewReader(nginxPage))
	}
}

// nginxError writes an error page in nginx's shape: the status as title
// and heading, the server's name under a rule.
func nginxError(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html>\n<head><title>%s</title></head>\n<body>\n<center><h1>%s</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n", status, status)
}
