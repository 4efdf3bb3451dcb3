package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshd/meshd/mesh/images"
	"github.com/spf13/pflag"
)

// Main is the child side: it prepares the namespaces it was cloned into
// and runs the task. It returns the process exit status.
func Main(args []string) int {
	if err := initTask(args); err != nil {
		fmt.Fprintln(os.Stderr, "task:", err)
		return 1
	}
	return 0
}

func initTask(args []string) error {
	fs := pflag.NewFlagSet(InitArg, pflag.ContinueOnError)
	hostname := fs.String("hostname", "", "")
	resolv := fs.String("resolv-conf", "", "")
	image := fs.String("image", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := syscall.Sethostname([]byte(*hostname)); err != nil {
		return fmt.Errorf("set hostname %s: %w", *hostname, err)
	}
	if err := bindResolvConf(*resolv); err != nil {
		return err
	}
	os.Setenv("HOSTNAME", *hostname)
	if *image == "" {
		return execCommand(fs.Args())
	}
	img, err := images.Lookup(*image)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return images.Run(ctx, img, fs.Args(), os.Stdout, os.Stderr)
}

// bindResolvConf makes the task's own resolv.conf visible at
// /etc/resolv.conf, in the task's mount namespace only.
func bindResolvConf(path string) error {
	if path == "" {
		return nil
	}
	// Nothing mounted here may reach the host: stop propagation first.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	target := "/etc/resolv.conf"
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		if f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err := syscall.Mount(path, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", path, target, err)
	}
	return nil
}

func execCommand(argv []string) error {
	if len(argv) == 0 {
		return errors.New("no image and no command")
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, argv, os.Environ())
}
