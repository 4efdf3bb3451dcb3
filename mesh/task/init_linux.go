package task

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshd/meshd/mesh/images"
	"github.com/spf13/pflag"
)

// Main is the child side: it prepares the namespaces it was cloned into
// and runs the task. It returns the process exit status: the host
// command's own, as a shell reports it (128+N when signal N killed it).
func Main(args []string) int {
	code, err := initTask(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "task:", err)
		return 1
	}
	return code
}

func initTask(args []string) (int, error) {
	fs := pflag.NewFlagSet(InitArg, pflag.ContinueOnError)
	hostname := fs.String("hostname", "", "")
	resolv := fs.String("resolv-conf", "", "")
	hosts := fs.String("hosts", "", "")
	hostnameFile := fs.String("hostname-file", "", "")
	image := fs.String("image", "", "")
	dir := fs.String("dir", "", "")
	workDir := fs.String("workdir", "", "")
	readyFD := fs.Int("ready-fd", -1, "")
	tini := fs.String("tini", "", "")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if err := syscall.Sethostname([]byte(*hostname)); err != nil {
		return 0, fmt.Errorf("set hostname %s: %w", *hostname, err)
	}
	// Nothing mounted here may reach the host: stop propagation first.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return 0, fmt.Errorf("make / private: %w", err)
	}
	for _, f := range []struct {
		src, target string
		create      bool
	}{
		// Without a resolv.conf the task resolves no service name: worth
		// an empty file on a host that has none (it stays there).
		{*resolv, "/etc/resolv.conf", true},
		{*hosts, "/etc/hosts", false},
		{*hostnameFile, "/etc/hostname", false},
	} {
		if err := bindFile(f.src, f.target, f.create); err != nil {
			return 0, err
		}
	}
	if err := mountProc(); err != nil {
		return 0, err
	}
	os.Setenv("HOSTNAME", *hostname)
	if *workDir != "" {
		if err := os.Chdir(*workDir); err != nil {
			return 0, fmt.Errorf("working directory: %w", err)
		}
	}
	// Set up: the task may be entered now, a byte on the ready pipe says
	// so, with the signals this init's Go runtime catches. The pipe stays
	// open until the task can take a stop's SIGTERM, which meshd holds
	// back until then: the exec of tini or of an image's program closes
	// it (close-on-exec, so no program of the task inherits it), or heard
	// does, after a second byte, once this init handles the signals
	// itself.
	heard := func() {}
	if *readyFD >= 0 {
		// A bare fd: an *os.File's finalizer could close it early.
		fd := *readyFD
		syscall.CloseOnExec(fd)
		_, caught, _ := readSignalMasks("/proc/self/status")
		_, _ = syscall.Write(fd, binary.LittleEndian.AppendUint64([]byte{1}, caught))
		heard = func() {
			_, _ = syscall.Write(fd, []byte{2})
			_ = syscall.Close(fd)
		}
	}
	if *image == "" {
		return runCommand(fs.Args(), *tini, heard)
	}
	img, err := images.Lookup(*image)
	if err != nil {
		return 0, err
	}
	if img.RunsCommand(fs.Args()) {
		return runCommand(images.Command(*image, fs.Args()), *tini, heard)
	}
	if img.Idles(fs.Args()) && *tini != "" {
		// tini and a sleep hold some 2 MB resident, most of it shared
		// with every other idle task, where this init waiting in its Go
		// runtime holds some 15 MB.
		return runCommand(images.IdleCommand(*image), *tini, heard)
	}
	if path, argv, ok := images.Program(img, fs.Args(), *dir); ok {
		return 0, execProgram(path, argv, *dir)
	}
	// The image's server runs in this process, which meshd started as
	// /proc/self/exe: the kernel would call it "exe" in ps -o comm, ss -p
	// and meshctl trace. It is named after its image instead.
	// (/proc/self/comm is the main thread's, whichever thread writes.)
	_ = os.WriteFile("/proc/self/comm", []byte(commName(img.Name)), 0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	heard()
	return 0, images.Run(ctx, img, fs.Args(), os.Stdout, os.Stderr)
}

// execProgram replaces this init with an image's host program (see
// images.Program), in dir, so that the program is the task's process and
// PID 1 of its namespace, as a container's entrypoint is: ps shows it and
// meshd's SIGTERM reaches it. Such a program handles SIGTERM itself (as
// PID 1 it gets no signal it has no handler for) and reaps its own
// children; Pdeathsig survives the exec, so it still dies with meshd. It
// returns only if the exec fails.
func execProgram(path string, argv []string, dir string) error {
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("run %s: exec %s: %w", argv[0], path, err)
	}
	return nil
}

// bindFile makes src visible at target, in the task's mount namespace
// only: the host and other tasks keep seeing their own file. An empty src
// binds nothing.
//
// A bind needs an existing target, and the task's mount namespace shares
// the host's filesystems: making a missing target would write a file into
// the host's /etc that outlives the task. So a missing target is skipped:
// the task sees no such file, as its host does, and loses little
// (hostname(1) reads the UTS name, not /etc/hostname; a resolver without
// /etc/hosts asks DNS). create makes the target first instead, for a file
// worth leaving on the host.
func bindFile(src, target string, create bool) error {
	if src == "" {
		return nil
	}
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create %s to bind %s on: %w", target, src, err)
		}
		f.Close()
	}
	if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, target, err)
	}
	return nil
}

// mountProc mounts a /proc of the task's PID namespace over the host's, in
// the task's mount namespace only: ps and /proc/<pid> inside the task then
// show the task's processes, numbered from 1, and nothing of the host.
func mountProc() error {
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc of the task's PID namespace: %w", err)
	}
	return nil
}

// forwarded are the signals the init passes on to the task's command: as
// PID 1 of its namespace it is the one meshd signals to stop the task.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// runCommand runs argv under tini when meshd found it (see tiniPath),
// else as the only child of this init, PID 1 of the task's PID namespace,
// and reaps every process orphaned inside the namespace
// until argv's process exits. It then returns that process's status; the
// init exits with it and the kernel kills whatever else still runs in the
// namespace, so nothing the command forked outlives the task.
//
// heard is called once the init passes signals on, before the fork.
func runCommand(argv []string, tini string, heard func()) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no image and no command")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return 0, err
	}
	if tini != "" {
		// Debian's tini does this init's work (it is Docker's --init)
		// in well under a megabyte, where this init's Go runtime holds
		// some 15 MB for as long as the task runs. It resolves argv[0]
		// on the same PATH, found above. Only if the exec fails does
		// this init stay.
		// -p SIGKILL: tini sets its own parent-death signal once it runs,
		// rather than relying on the one set before this exec.
		tiniArgv := append([]string{"tini", "-p", "SIGKILL", "--"}, argv...)
		err := syscall.Exec(tini, tiniArgv, os.Environ())
		fmt.Fprintf(os.Stderr, "task: exec %s: %v; reaping with meshd's own init\n", tini, err)
	}
	// Before the fork: a signal that comes before the child exists is
	// queued, not lost.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, forwarded...)
	heard()
	child, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() {
		for s := range sigc {
			_ = syscall.Kill(child, s.(syscall.Signal)) // ESRCH: it has just exited
		}
	}()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %s: %w", argv[0], err)
		}
		if pid == child {
			return exitCode(ws), nil
		}
		// Any other pid was an orphan reparented to this init: reaped, done.
	}
}

// tiniPaths are where Debian's tini package puts its two builds, the
// static one first: fixed paths, not the task's PATH, which the service
// sets.
var tiniPaths = []string{"/usr/bin/tini-static", "/usr/bin/tini"}

// tiniPath is the first tini of tiniPaths installed, or "".
func tiniPath() string {
	for _, p := range tiniPaths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// commName is a process name for /proc/PID/comm: the last element of an
// image's name ("jpetazzo/trainingwheels" → "trainingwheels"), cut to
// the kernel's 15 bytes.
func commName(image string) string {
	name := image[strings.LastIndexByte(image, '/')+1:]
	return name[:min(len(name), 15)]
}

// exitCode is the status a shell gives for ws: the exit code, or 128+N
// when signal N killed the process (an init cannot die of the signal
// itself: the kernel ignores a PID namespace init's own default signals).
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}
