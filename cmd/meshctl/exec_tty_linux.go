package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyDrain is how long the command's output is still copied once it has
// ended. The copy ends by itself when the last process holding the
// terminal closes it; one left in the background would otherwise keep
// exec waiting, which docker exec does not do.
const ttyDrain = 500 * time.Millisecond

// runTTY runs x with a new pseudo-terminal as its stdin, stdout and stderr
// and its controlling terminal, copying between it and t, and returns
// x.Wait's error. x may be any command: exec runs nsenter with it, a test
// runs sh.
func runTTY(x *exec.Cmd, t ttyIO) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	x.Stdin, x.Stdout, x.Stderr = slave, slave, slave
	if x.SysProcAttr == nil {
		x.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A session of its own, led by the command, with the terminal as its
	// controlling one (Ctty is the child's fd 0): ^C typed there
	// interrupts the command, and a shell gets job control.
	x.SysProcAttr.Setsid, x.SysProcAttr.Setctty, x.SysProcAttr.Ctty = true, true, 0
	if t.sizeFd >= 0 {
		resizePTY(master, t.sizeFd)
	}
	if t.rawFd >= 0 {
		old, err := term.MakeRaw(t.rawFd)
		if err != nil {
			slave.Close()
			return fmt.Errorf("set terminal raw: %w", err)
		}
		defer term.Restore(t.rawFd, old) //nolint:errcheck // nothing better to do on the way out
	}
	// Registered before the start, so that no resize is missed.
	winch := make(chan os.Signal, 1)
	if t.sizeFd >= 0 {
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	err = x.Start()
	// The child has its copy: once it and its children close theirs,
	// reading the master ends.
	slave.Close()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-winch:
				resizePTY(master, t.sizeFd)
			case s := <-sigs:
				// meshctl's own ^C (without -i its terminal is not raw),
				// or a kill: the command's whole group gets it, nsenter's
				// child too, which nsenter would not pass on.
				_ = syscall.Kill(-x.Process.Pid, s.(syscall.Signal))
			}
		}
	})
	if t.in != nil {
		// Not waited for: a read of meshctl's stdin cannot be cancelled,
		// and meshctl exits once the command has.
		go func() { _, _ = io.Copy(master, t.in) }()
	}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(t.out, master) // ends with EIO once the slave is closed
		close(copied)
	}()
	werr := x.Wait()
	_ = master.SetReadDeadline(time.Now().Add(ttyDrain))
	select {
	case <-copied:
	case <-time.After(2 * ttyDrain): // a master without deadlines
	}
	close(stop)
	wg.Wait()
	return werr
}

// openPTY opens a pseudo-terminal pair. The master is made non-blocking
// so that the runtime's poller serves it and a read deadline can end the
// copy from it: pty.Open hands it back blocking.
func openPTY() (master, slave *os.File, err error) {
	m, slave, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		slave.Close()
		return nil, nil, fmt.Errorf("open pseudo-terminal: %w", err)
	}
	return os.NewFile(uintptr(fd), m.Name()), slave, nil
}

// resizePTY gives the pseudo-terminal the size of the terminal fd; the
// kernel sends the command SIGWINCH. Failing is harmless (a wrong size),
// so it is not reported.
func resizePTY(master *os.File, fd int) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	// Through the poller's fd: master.Fd() would make it blocking again.
	if sc, err := master.SyscallConn(); err == nil {
		_ = sc.Control(func(m uintptr) { _ = unix.IoctlSetWinsize(int(m), unix.TIOCSWINSZ, ws) })
	}
}
