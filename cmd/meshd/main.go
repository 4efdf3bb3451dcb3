// Command meshd is the mesh daemon: one per node.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/meshd/meshd/mesh"
	"github.com/meshd/meshd/mesh/api"
	"github.com/meshd/meshd/mesh/task"
	"github.com/spf13/pflag"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == task.InitArg {
		os.Exit(task.Main(os.Args[2:]))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "meshd:", err)
		os.Exit(1)
	}
}

// tokenEnv may hold the join token for --join instead of --token or
// --token-file: unlike an argument it does not show in ps.
const tokenEnv = "MESHD_TOKEN"

// tokenFileEnv is --token-file's default, so that a unit's
// EnvironmentFile can name the token's file without touching the command
// line (systemd cannot add "--token-file $F" only when F is set).
const tokenFileEnv = "MESHD_TOKEN_FILE"

func run(args []string) error {
	var u mesh.UserConfig
	// Read once, then gone: nothing meshd starts inherits the token.
	u.TokenEnv = os.Getenv(tokenEnv)
	os.Unsetenv(tokenEnv)
	var debug, version bool
	fs := newFlagSet(&u, &debug, &version, os.Getenv(tokenFileEnv))
	// Errors are one line; the usage only on --help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Printf("Usage: meshd [flags]\n\n%s", fs.FlagUsages())
			return nil
		}
		return err
	}
	if version {
		fmt.Println("meshd", api.Version)
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := u.ToConfig()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	mesh.SetDaemonProcs()
	d, err := mesh.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return d.Run(ctx)
}

// newFlagSet defines meshd's flags over u, debug and version; tokenFile
// is --token-file's default ($MESHD_TOKEN_FILE). packaging/deb/meshd.8
// documents each of them (TestManPageNamesEveryFlag).
func newFlagSet(u *mesh.UserConfig, debug, version *bool, tokenFile string) *pflag.FlagSet {
	def := mesh.DefaultConfig()
	fs := pflag.NewFlagSet("meshd", pflag.ContinueOnError)
	fs.StringVar(&u.NodeName, "node-name", "", "name shown in node ls (default: the hostname)")
	fs.StringVar(&u.AdvertiseAddr, "advertise-addr", "", "underlay address other nodes reach this one at (default: first private address)")
	fs.StringVar(&u.ListenAddr, "listen-addr", def.ListenAddr.String(), "address[:port] of the cluster API; gossip binds the same address on 7946")
	fs.BoolVar(&u.Init, "init", false, "start a new cluster at the first start, as swarm init (for scripted starts)")
	fs.StringVar(&u.Join, "join", "", "manager address[:port] to join at the first start, as swarm join (for scripted starts)")
	fs.StringVar(&u.TokenFile, "token-file", tokenFile, "file holding the join token for --join (keeps it out of the command line; default $"+tokenFileEnv+")")
	fs.StringVar(&u.Token, "token", "", "join token (SWMTKN-1-…) for --join; --token-file or $"+tokenEnv+" keeps it out of ps")
	fs.StringVar(&u.RunDir, "run-dir", def.RunDir, "socket, state and namespace files")
	fs.StringVar(&u.SocketGroup, "socket-group", "", "group that may use the socket, as dockerd's -G (default: root only)")
	fs.IntVar(&u.DataPathPort, "data-path-port", def.DataPathPort, "VXLAN UDP port (1024-49151)")
	fs.StringVar(&u.LBMode, "lb-mode", string(def.LBMode), "data plane: auto, ipvs or iptables")
	fs.DurationVar(&u.JoinTimeout, "join-timeout", 0, "how long to retry an unreachable manager (default 10s)")
	fs.StringArrayVar(&u.DNSUpstreams, "dns-upstream", nil, "where the embedded DNS forwards other names, IP[:port] (repeatable; default: /etc/resolv.conf)")
	fs.DurationVar(&u.DNSTTL, "dns-ttl", 0, "TTL of the embedded DNS's answers (default 600s)")
	fs.DurationVar(&u.DrainDelay, "drain-delay", def.DrainDelay, "how long a removed task's backends keep weight 0 before it stops")
	fs.DurationVar(&u.GossipKeyRotation, "gossip-key-rotation", def.GossipKeyRotation, "how often the leading manager rotates the gossip key")
	fs.DurationVar(&u.RescheduleDelay, "reschedule-delay", def.RescheduleDelay, "how long a node may be down before its tasks move to other nodes")
	fs.StringVar(&u.IPVSTimeouts, "ipvs-timeouts", "", "IPVS timeouts tcp,tcpfin,udp (e.g. 3600s,120s,300s); default: the kernel's")
	fs.StringVar(&u.ConntrackMax, "conntrack-max", strconv.Itoa(def.ConntrackMax), "least nf_conntrack_max kept on the node, raised where lower (0: leave the kernel's)")
	offload := fs.VarPF(offFlag{&u.NoFlowOffload}, "flow-offload", "", "iptables data plane: established connections through an nftables flowtable where the kernel has one")
	offload.NoOptDefVal = "true"
	offload.DefValue = "true"
	fs.StringVar(&u.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://IP:PORT/metrics, e.g. 127.0.0.1:9323 (default: off)")
	fs.BoolVar(&u.TestHooks, "test-hooks", false, "offer the tests' hooks on the socket (pausing repairs); never in production")
	_ = fs.MarkHidden("test-hooks") // for the e2e tests, not for users
	fs.BoolVar(debug, "debug", false, "log at debug level")
	fs.BoolVar(version, "version", false, "print the version and exit")
	return fs
}

// offFlag is a boolean flag that is true unless given false, kept as its
// opposite (*off) so that UserConfig's zero value is the default.
type offFlag struct{ off *bool }

func (f offFlag) String() string {
	if f.off == nil {
		return "true"
	}
	return strconv.FormatBool(!*f.off)
}

func (f offFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.off = !v
	return nil
}

func (offFlag) Type() string { return "bool" }
