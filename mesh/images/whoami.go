package images

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// errHelp means -h or --help was given and the usage has been printed.
var errHelp = errors.New("help requested")

// whoamiConfig is whoami's command line, containous/whoami's flags.
type whoamiConfig struct {
	port    int    // --port, default $WHOAMI_PORT_NUMBER or 80
	name    string // --name, default $WHOAMI_NAME; printed as "Name:" when set
	verbose bool   // --verbose: one access-log line per request on stdout
}

// parseWhoamiArgs parses args with Go's flag package, as whoami does, so
// "-port 8080", "--port 8080" and "--port=8080" all work and anything after
// the first non-flag argument is ignored. TLS flags (--cert, --key,
// --cacert) are not supported and fail as unknown flags.
func parseWhoamiArgs(args []string, usage io.Writer) (whoamiConfig, error) {
	cfg := whoamiConfig{name: os.Getenv("WHOAMI_NAME")}
	fs := flag.NewFlagSet("whoami", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.String("port", envOr("WHOAMI_PORT_NUMBER", "80"), "give me a port number")
	fs.StringVar(&cfg.name, "name", cfg.name, "give me a name")
	fs.BoolVar(&cfg.verbose, "verbose", false, "enable verbose logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fmt.Fprintln(usage, "Usage of whoami:")
			fs.PrintDefaults()
			return cfg, errHelp
		}
		return cfg, fmt.Errorf("whoami: %w", err)
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 0 || p > 65535 {
		return cfg, fmt.Errorf("whoami: invalid --port %q: want a number from 0 to 65535", *port)
	}
	cfg.port = p
	return cfg, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// whoami is the containous/whoami stand-in. Its health status is per
// server, not global, so two in one test process do not interfere.
type whoami struct {
	cfg    whoamiConfig
	stdout io.Writer // access log, when cfg.verbose

	mu     sync.Mutex // guards the field below
	health int        // status code /health answers, set by POST /health
}

func newWhoami(cfg whoamiConfig, stdout io.Writer) http.Handler {
	wh := &whoami{cfg: cfg, stdout: stdout, health: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("/api", wh.api)
	mux.HandleFunc("/health", wh.healthz)
	mux.HandleFunc("/", wh.whoami)
	if !cfg.verbose {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		// whoami's access log: <remote> - - [<time>] "<method> <path> <proto>" - -
		fmt.Fprintf(wh.stdout, "%s - - [%s] \"%s %s %s\" - -\n", r.RemoteAddr,
			time.Now().Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.URL.Path, r.Proto)
	})
}

// whoami answers any path as containous/whoami does, e.g.
//
//	Hostname: 0f5c2a1b9d3e
//	IP: 127.0.0.1
//	IP: 10.0.0.7
//	RemoteAddr: 10.0.0.2:36828
//	GET / HTTP/1.1
//	Host: 192.168.33.10:8080
//	User-Agent: curl/7.68.0
//	Accept: */*
//
// The request part is [http.Request.Write], which whoami calls, so header
// order and spelling are whoami's: Host, User-Agent, the rest sorted.
func (wh *whoami) whoami(w http.ResponseWriter, r *http.Request) {
	if d, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil && d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done(): // client gone or task stopping
			t.Stop()
		}
	}
	if wh.cfg.name != "" {
		fmt.Fprintln(w, "Name:", wh.cfg.name)
	}
	hostname, _ := os.Hostname()
	fmt.Fprintln(w, "Hostname:", hostname)
	for _, ip := range interfaceIPs() {
		fmt.Fprintln(w, "IP:", ip)
	}
	fmt.Fprintln(w, "RemoteAddr:", r.RemoteAddr)
	if err := r.Write(w); err != nil {
		// Headers are sent already; whoami answers http.Error here,
		// which only appends the message. Do the same.
		fmt.Fprintln(w, err)
	}
}

// whoamiData is /api's answer, with containous/whoami's JSON names.
type whoamiData struct {
	Hostname   string      `json:"hostname,omitempty"`
	IP         []string    `json:"ip,omitempty"`
	Headers    http.Header `json:"headers,omitempty"`
	URL        string      `json:"url,omitempty"`
	Host       string      `json:"host,omitempty"`
	Method     string      `json:"method,omitempty"`
	Name       string      `json:"name,omitempty"`
	RemoteAddr string      `json:"remoteAddr,omitempty"`
}

func (wh *whoami) api(w http.ResponseWriter, r *http.Request) {
	hostname, _ := os.Hostname()
	data := whoamiData{
		Hostname:   hostname,
		IP:         interfaceIPs(),
		Headers:    r.Header,
		URL:        r.URL.RequestURI(),
		Host:       r.Host,
		Method:     r.Method,
		Name:       wh.cfg.name,
		RemoteAddr: r.RemoteAddr,
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Methods", "*")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(data) // fails only if the client is gone
}

// healthz answers GET (and any method but POST) with the current status,
// 200 until a POST sets another: `curl -X POST -d 500 …/health`.
func (wh *whoami) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		wh.mu.Lock()
		code := wh.health
		wh.mu.Unlock()
		w.WriteHeader(code)
		return
	}
	var code int
	if err := json.NewDecoder(io.LimitReader(r.Body, 64)).Decode(&code); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// WriteHeader panics outside 100-999; whoami would, we refuse.
	if code < 100 || code > 999 {
		http.Error(w, fmt.Sprintf("status code %d out of range 100-999", code), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(wh.stdout, "Update health check status code [%d]\n", code)
	wh.mu.Lock()
	wh.health = code
	wh.mu.Unlock()
}

// interfaceIPs lists every address of every interface, in interface order,
// as whoami does: "127.0.0.1", "::1", "10.0.0.7", …
func interfaceIPs() []string {
	var ips []string
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, addr := range addrs {
			var ip net.IP
			switch a := addr.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			}
			if ip != nil {
				ips = append(ips, ip.String())
			}
		}
	}
	return ips
}
