package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

const (
	// shutdownTimeout bounds a graceful shutdown: how long Run waits for
	// requests in flight once its context ends before closing their
	// connections. Under Docker's 10 s stop grace period, so a task that is
	// stopped is gone before anything would kill it.
	shutdownTimeout = 5 * time.Second
	// readHeaderTimeout drops clients that open a connection and never
	// finish a request's headers, so an idle task cannot be pinned by them.
	readHeaderTimeout = 30 * time.Second
)

// Run runs img, in the calling process, until ctx is done. args are the
// arguments after the image name (the container's CMD): whoami takes
// --port N and --name S (and --verbose) as containous/whoami does, the
// other images ignore them. stdout and stderr are the task's output;
// a server writes one line to stdout when it listens and its errors to
// stderr. Writes to them are serialised.
//
// Run returns nil once the image has stopped cleanly after ctx ended, and
// an error if it cannot start: an [Image] not from [Lookup], bad arguments,
// or a port it cannot listen on (ports below 1024 need root or
// CAP_NET_BIND_SERVICE).
func Run(ctx context.Context, img Image, args []string, stdout, stderr io.Writer) error {
	return run(ctx, img, args, stdout, stderr, runOptions{})
}

// runOptions are the seams tests use; the zero value is what [Run] does.
type runOptions struct {
	// listen opens a server's socket for addr (e.g. ":80"); nil means
	// net.ListenConfig.Listen on "tcp". Tests listen on 127.0.0.1:0
	// instead, so they need no root, and record the addr asked for.
	listen func(ctx context.Context, addr string) (net.Listener, error)
}

func run(ctx context.Context, img Image, args []string, stdout, stderr io.Writer, opts runOptions) error {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var mu sync.Mutex // one lock for both, as they are often the same file
	stdout = &lockedWriter{mu: &mu, w: stdout}
	stderr = &lockedWriter{mu: &mu, w: stderr}
	if opts.listen == nil {
		opts.listen = func(ctx context.Context, addr string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, "tcp", addr)
		}
	}

	switch img.Name {
	case "whoami":
		cfg, err := parseWhoamiArgs(args, stdout)
		if errors.Is(err, errHelp) {
			return nil // usage printed; whoami -help exits 0 too
		}
		if err != nil {
			return err
		}
		return serve(ctx, "whoami", ":"+strconv.Itoa(cfg.port), newWhoami(cfg, stdout), stdout, stderr, opts)
	case "nginx":
		return serve(ctx, "nginx", ":80", newNginx(time.Now()), stdout, stderr, opts)
	case "elasticsearch":
		return serve(ctx, "elasticsearch", ":9200", newElasticsearch(), stdout, stderr, opts)
	case "redis":
		return serveRedis(ctx, ":6379", stdout, stderr, opts)
	case "jpetazzo/trainingwheels":
		return serve(ctx, "trainingwheels", ":5000", newTrainingWheels(), stdout, stderr, opts)
	}
	if isShell(img.Name) {
		<-ctx.Done()
		return nil
	}
	return fmt.Errorf("run image %q: %w %q (an Image comes from Lookup)", img.Ref, ErrUnknown, img.Name)
}

// serve listens on addr and serves h until ctx is done, then shuts the
// server down gracefully. It returns only once the server's goroutine has.
func serve(ctx context.Context, name, addr string, h http.Handler, stdout, stderr io.Writer, opts runOptions) error {
	if ctx.Err() != nil {
		return nil // stopped before it started: nothing to shut down
	}
	ln, err := opts.listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          log.New(stderr, name+": ", 0),
		// Requests inherit ctx, so one that waits (whoami ?wait=) ends
		// when the task is stopped instead of holding up the shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	fmt.Fprintf(stdout, "%s: listening on %s\n", name, listenAddr(addr, ln.Addr()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc: // Serve always returns an error, never ErrServerClosed here
		return fmt.Errorf("%s: serve on %s: %w", name, addr, err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v; closing connections\n", name, err)
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve on %s: %w", name, addr, err)
	}
	return nil
}

// listenAddr is addr as configured (":80") with the port the listener got,
// so "--port 0" logs the real one.
func listenAddr(addr string, got net.Addr) string {
	host, _, err := net.SplitHostPort(addr)
	tcp, ok := got.(*net.TCPAddr)
	if err != nil || !ok {
		return got.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// lockedWriter serialises writes from a server's goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}
