package images

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// trainingWheelsPage is the jpetazzo/trainingwheels stand-in's page: the
// original is a small Flask app counting its views in redis. The title is
// the original's; the words are our own.
var trainingWheelsPage = template.Must(template.New("tw").Parse(`<!DOCTYPE html>
<html>
<head>
<title>Training wheels</title>
</head>
<body>
<h1>Training wheels</h1>
{{- if .Err}}
<p><strong>Redis connection error</strong></p>
<pre>{{.Err}}</pre>
{{- else}}
<p>This page has been viewed {{.Hits}} times.</p>
{{- end}}
<p>Served by container {{.Hostname}}.</p>
</body>
</html>
`))

// trainingWheels answers GET / with a page counting its views in redis.
type trainingWheels struct {
	// redisAddr is where the counter lives: "redis:6379", the service
	// name, resolved on every request through the task's resolv.conf
	// (meshd's DNS), so a redis started after this task is found.
	redisAddr string
	timeout   time.Duration // for resolving, connecting and the reply, together
}

func newTrainingWheels() http.Handler {
	return &trainingWheels{redisAddr: "redis:6379", timeout: time.Second}
}

func (tw *trainingWheels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	case r.URL.Path != "/":
		http.NotFound(w, r) // a browser's /favicon.ico must not count
		return
	}
	data := struct {
		Hostname string
		Hits     int64
		Err      error
	}{}
	data.Hostname, _ = os.Hostname()
	data.Hits, data.Err = tw.incr(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The original answers 200 with the error on the page, which is what
	// the tutorial's screenshots show.
	_ = trainingWheelsPage.Execute(w, data) // fails only if the client is gone
}

// incr sends INCR hits to redis and returns the new count.
func (tw *trainingWheels) incr(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, tw.timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", tw.redisAddr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, "*2\r\n$4\r\nINCR\r\n$4\r\nhits\r\n"); err != nil {
		return 0, fmt.Errorf("redis %s: %w", tw.redisAddr, err)
	}
	line, err := readRedisLine(bufio.NewReader(c), 256, "reply too long")
	if err != nil {
		return 0, fmt.Errorf("redis %s: %w", tw.redisAddr, err)
	}
	switch {
	case len(line) > 0 && line[0] == ':':
		if n, err := strconv.ParseInt(string(line[1:]), 10, 64); err == nil {
			return n, nil
		}
	case len(line) > 0 && line[0] == '-':
		return 0, fmt.Errorf("redis %s: %s", tw.redisAddr, line[1:])
	}
	return 0, fmt.Errorf("redis %s: %w: %q", tw.redisAddr, errBadReply, line)
}

var errBadReply = errors.New("unexpected reply to INCR")
