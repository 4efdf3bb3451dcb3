package images

import (
	"os/exec"
	"strings"
)

// redisServerPath is where Debian's redis-server package puts the server;
// it is looked for there too when the task's PATH does not lead to it.
const redisServerPath = "/usr/bin/redis-server"

// Program returns the host program that runs img with args in place of
// the built-in server, when this machine has one: its path and its argv
// (argv[0] is the program's name, as a shell would pass it). ok is false
// when img has no such program or the machine lacks it; [Run] then serves
// the built-in one. A task's init execs the program itself, so the task's
// process is the program, as a container's is.
//
// Only redis has one: Debian's redis-server, found on PATH or at
// /usr/bin/redis-server, run as Docker's redis image runs it, listening on
// every address on 6379 (IPv6 if the namespace has it) in protected-mode
// no, and, unlike Docker's, persisting nothing (save "", appendonly no):
// a task's data lives as long as the task. dir is its working directory
// ("dir"), which must be private to the task: a client's SAVE writes
// there. args are redis-server's arguments, as [CommandLine] shows them:
// a config file first if any, then options, which come after these
// defaults and so override them.
func Program(img Image, args []string, dir string) (path string, argv []string, ok bool) {
	return program(img, args, dir, exec.LookPath)
}

// program is [Program] with the PATH lookup as a seam for tests.
func program(img Image, args []string, dir string, lookPath func(string) (string, error)) (string, []string, bool) {
	if img.Name != "redis" {
		return "", nil, false
	}
	path, err := lookPath("redis-server")
	if err != nil {
		if path, err = lookPath(redisServerPath); err != nil {
			return "", nil, false
		}
	}
	return path, redisServerArgv(args, dir), true
}

// redisServerArgv is the argv redis-server runs with for the image's args.
// redis reads a config file only as its first argument, so one given
// stays first; the defaults follow so that the user's options, later,
// override them.
func redisServerArgv(args []string, dir string) []string {
	args = redisServerArgs(args)
	argv := []string{"redis-server"}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		argv, args = append(argv, args[0]), args[1:]
	}
	argv = append(argv,
		"--bind", "*", "-::*", // redis 7's default without a config file; "-": IPv6 if there is any
		"--protected-mode", "no", // as docker-entrypoint.sh sets it: clients come from other tasks
		"--save", "", "--appendonly", "no",
		"--dir", dir)
	return append(argv, args...)
}

// redisServerArgs are the image's args as redis-server's: a leading
// "redis-server" is dropped, as Docker's image names the program it runs
// and `docker run redis redis-server --appendonly yes` is the usual way to
// pass it options.
func redisServerArgs(args []string) []string {
	if len(args) > 0 && args[0] == "redis-server" {
		return args[1:]
	}
	return args
}
