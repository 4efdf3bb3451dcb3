package deb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
	"github.com/meshd/meshd/mesh/api"
)

// buildPackage runs build.sh into a temporary dist dir and returns the
// package's path.
func buildPackage(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "dpkg"} {
		testutil.RequireTool(t, tool)
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	dist := t.TempDir()
	cmd := exec.Command("sh", "build.sh")
	cmd.Env = append(os.Environ(), "GO="+gobin, "DIST="+dist, "GOOS=", "GOARCH=", "DEB_VERSION=", "SOURCE_DATE_EPOCH=1764806400")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
	if filepath.Dir(deb) != dist || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("build.sh printed %q, want a .deb in %s", out, dist)
	}
	return deb
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

func debArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}

func TestPackage(t *testing.T) {
	deb := buildPackage(t)
	wantVersion := strings.ReplaceAll(api.Version, "-", "~") + "-1"
	if want := "meshd_" + wantVersion + "_" + debArch() + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package %s, want %s", filepath.Base(deb), want)
	}

	t.Run("control", func(t *testing.T) {
		fields := map[string]string{}
		for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Recommends", "Maintainer", "Description"} {
			fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, f))
		}
		for f, want := range map[string]string{"Package": "meshd", "Version": wantVersion, "Architecture": debArch()} {
			if fields[f] != want {
				t.Errorf("%s: %q, want %q", f, fields[f], want)
			}
		}
		// What meshd and meshctl run: iptables-restore and -save, ipset
		// (large mark chains), modprobe (ip_vs), nsenter (meshctl exec); the
		// tutorials' tools are recommended.
		for _, dep := range []string{"iptables", "ipset", "kmod", "util-linux (>= "} {
			if !strings.Contains(fields["Depends"], dep) {
				t.Errorf("Depends %q lacks %s", fields["Depends"], dep)
			}
		}
		for _, rec := range []string{"iproute2", "ipvsadm", "tini"} {
			if !strings.Contains(fields["Recommends"], rec) {
				t.Errorf("Recommends %q lacks %s", fields["Recommends"], rec)
			}
		}
		if got := strings.TrimSpace(run(t, "dpkg-deb", "--info", deb, "conffiles")); got != "/etc/default/meshd" {
			t.Errorf("conffiles: %q, want /etc/default/meshd", got)
		}
	})

	t.Run("contents", func(t *testing.T) {
		files := map[string]string{} // path -> mode string as tar prints it
		for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 {
				t.Fatalf("dpkg-deb --contents line %q", line)
			}
			if f[1] != "root/root" {
				t.Errorf("%s owned by %s, want root/root", f[len(f)-1], f[1])
			}
			files[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
		}
		want := map[string]string{
			"/usr/bin/meshd":                                  "-rwxr-xr-x",
			"/usr/bin/meshctl":                                "-rwxr-xr-x",
			"/lib/systemd/system/meshd.service":               "-rw-r--r--",
			"/etc/default/meshd":                              "-rw-r--r--",
			"/usr/share/bash-completion/completions/meshctl":  "-rw-r--r--",
			"/usr/share/man/man1/meshctl.1.gz":                "-rw-r--r--",
			"/usr/share/man/man1/meshctl-service-create.1.gz": "-rw-r--r--",
			"/usr/share/man/man1/meshctl-swarm-init.1.gz":     "-rw-r--r--",
			"/usr/share/man/man1/meshctl-swarm-join.1.gz":     "-rw-r--r--",
			"/usr/share/man/man1/meshctl-node-ls.1.gz":        "-rw-r--r--",
			"/usr/share/man/man8/meshd.8.gz":                  "-rw-r--r--",
			"/usr/share/doc/meshd/copyright":                  "-rw-r--r--",
			"/usr/share/doc/meshd/changelog.Debian.gz":        "-rw-r--r--",
			"/usr/share/lintian/overrides/meshd":              "-rw-r--r--",
		}
		for path, mode := range want {
			if got, ok := files[path]; !ok {
				t.Errorf("%s missing", path)
			} else if got != mode {
				t.Errorf("%s: mode %s, want %s", path, got, mode)
			}
		}
		pages := 0
		for path, mode := range files {
			switch {
			case strings.HasSuffix(path, "/") && mode != "drwxr-xr-x":
				t.Errorf("directory %s: mode %s, want drwxr-xr-x", path, mode)
			case strings.HasPrefix(path, "/usr/share/man/man1/"):
				pages++
				if strings.Contains(path, "gendocs") {
					t.Errorf("%s documents the generator itself", path)
				}
			}
		}
		if pages < 40 {
			t.Errorf("%d man pages in man1, want one for each meshctl command (over 40)", pages)
		}
	})

	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)

	t.Run("unit", func(t *testing.T) {
		unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/meshd.service"))
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{}
		section := ""
		for _, line := range strings.Split(string(unit), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "["):
				section = line
			default:
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					t.Errorf("unit line %q is no key=value", line)
				}
				keys[section+k] = v
			}
		}
		for k, want := range map[string]string{
			"[Service]ExecStart":       "/usr/bin/meshd $MESHD_OPTS",
			"[Service]EnvironmentFile": "-/etc/default/meshd",
			"[Service]KillMode":        "mixed",
			"[Service]Restart":         "on-failure",
			"[Unit]After":              "network-online.target",
			"[Install]WantedBy":        "multi-user.target",
		} {
			if keys[k] != want {
				t.Errorf("%s=%q, want %q", k, keys[k], want)
			}
		}
		// Each gives meshd a mount namespace of its own: the netns files
		// it mounts under /var/run/meshd would be invisible to the host.
		for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "ProtectKernelModules", "MountFlags"} {
			if v, ok := keys["[Service]"+k]; ok {
				t.Errorf("%s=%s would hide meshd's namespace mounts from the host", k, v)
			}
		}
		testutil.RequireTool(t, "systemd-analyze")
		// The unit as installed, but for the path of the binary, which is
		// the package's in the temporary root. Warnings do not change the
		// exit status: any output is a failure.
		dir := t.TempDir()
		local := strings.ReplaceAll(string(unit), "/usr/bin/meshd", filepath.Join(root, "usr/bin/meshd"))
		if err := os.WriteFile(filepath.Join(dir, "meshd.service"), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(dir, "meshd.service")).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("default", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "etc/default/meshd"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !regexp.MustCompile(`(?m)^MESHD_OPTS=`).MatchString(s) || !strings.Contains(s, "MESHD_TOKEN_FILE=") {
			t.Errorf("/etc/default/meshd names no MESHD_OPTS or MESHD_TOKEN_FILE:\n%s", s)
		}
		// Sourced as systemd reads it, by sh here: it must parse.
		if out, err := exec.Command("sh", "-n", filepath.Join(root, "etc/default/meshd")).CombinedOutput(); err != nil {
			t.Errorf("sh -n /etc/default/meshd: %v\n%s", err, out)
		}
	})

	t.Run("binaries", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the binaries are Linux's")
		}
		for _, cmd := range []string{"meshd", "meshctl"} {
			args := []string{"version"}
			if cmd == "meshd" {
				args = []string{"--version"}
			}
			if got, want := strings.TrimSpace(run(t, filepath.Join(root, "usr/bin", cmd), args...)), cmd+" "+api.Version; got != want {
				t.Errorf("%s %s: %q, want %q", cmd, args[0], got, want)
			}
		}
	})

	t.Run("completion", func(t *testing.T) {
		path := filepath.Join(root, "usr/share/bash-completion/completions/meshctl")
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
		// The script asks meshctl itself (cobra's hidden __complete).
		out := run(t, "bash", "-c", `source "$1"; complete -p meshctl`, "_", path)
		if !strings.Contains(out, "meshctl") {
			t.Errorf("complete -p meshctl: %q", out)
		}
		if runtime.GOOS == "linux" {
			got := run(t, filepath.Join(root, "usr/bin/meshctl"), "__complete", "service", "cr")
			if !strings.Contains(got, "create") {
				t.Errorf("meshctl __complete service cr: %q, want create", got)
			}
		}
	})

	t.Run("man", func(t *testing.T) {
		testutil.RequireTool(t, "man")
		for page, want := range map[string][]string{
			"usr/share/man/man1/meshctl-service-create.1.gz": {"MESHCTL-SERVICE-CREATE(1)", "meshctl-service-create - Create a service", "--replicas", "--publish"},
			"usr/share/man/man1/meshctl.1.gz":                {"meshctl-swarm(1)"},
			"usr/share/man/man8/meshd.8.gz":                  {"--advertise-addr", "--token-file", "MESHD_TOKEN_FILE"},
		} {
			cmd := exec.Command("man", "-l", filepath.Join(root, page))
			cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100", "LANG=C.UTF-8")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Errorf("man -l %s: %v\n%s", page, err, stderr.Bytes())
			}
			// Bold and underline are overstrikes when not on a terminal;
			// troff's hyphen is U+2010.
			text := regexp.MustCompile(".\b").ReplaceAllString(string(out), "")
			text = strings.ReplaceAll(text, "‐", "-")
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("man -l %s lacks %q:\n%s", page, w, text)
				}
			}
		}
	})

	t.Run("lintian", func(t *testing.T) {
		// Clean but for the overrides the package carries, each explained
		// in packaging/deb/lintian-overrides. (As root lintian says it
		// would rather not be, on stderr: only its tags count.)
		testutil.RequireTool(t, "lintian")
		cmd := exec.Command("lintian", "--fail-on", "error,warning", deb)
		out, err := cmd.Output()
		if err != nil || regexp.MustCompile(`(?m)^[EW]: `).Match(out) {
			t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
		}
	})

	t.Run("dpkg install and purge", func(t *testing.T) {
		// A throwaway dpkg root: its own database, no dependencies there,
		// maintainer scripts run from outside it (they do nothing under
		// $DPKG_ROOT). dpkg makes the files root's, which takes root.
		testutil.RequireRoot(t)
		inst := t.TempDir()
		admin := filepath.Join(inst, "var/lib/dpkg")
		for _, d := range []string{"info", "updates", "triggers"} {
			if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		dpkg := func(args ...string) string {
			return run(t, "dpkg", append([]string{"--root=" + inst, "--force-not-root", "--force-script-chrootless",
				"--force-depends", "--log=/dev/null"}, args...)...)
		}
		dpkg("--install", deb)
		status := dpkg("--status", "meshd")
		if !strings.Contains(status, "Status: install ok installed") || !strings.Contains(status, "/etc/default/meshd ") {
			t.Errorf("dpkg --status meshd:\n%s", status)
		}
		for _, f := range []string{"usr/bin/meshd", "lib/systemd/system/meshd.service", "etc/default/meshd"} {
			if _, err := os.Stat(filepath.Join(inst, f)); err != nil {
				t.Errorf("after install: %v", err)
			}
		}
		dpkg("--purge", "meshd")
		for _, f := range []string{"usr/bin/meshd", "etc/default/meshd"} {
			if _, err := os.Stat(filepath.Join(inst, f)); !os.IsNotExist(err) {
				t.Errorf("after purge: %s still there (%v)", f, err)
			}
		}
	})
}
