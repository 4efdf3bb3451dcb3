#!/usr/bin/env bash
# vm/run.sh: boots the image vm/build.sh made and judges the run.
#
# The serial console is streamed to stdout and saved to $VM_CACHE/last.log.
# The run fails when the suite fails, when /init's end marker
# ("=== VM-E2E-EXIT status=N ===") is missing (the VM crashed, panicked or
# powered off early), or when the VM has not finished within $VM_TIMEOUT
# seconds. qemu is killed whatever happens, by the PID it wrote.
#
# Environment:
#   VM_TIMEOUT   seconds before the VM is killed (default 1080)
#   VM_MEM       guest memory (default 2G)
#   VM_SMP       guest CPUs (default 2)
#   VM_ACCEL     qemu accelerator (default tcg). KVM exists on these
#                machines but hangs, so it is opt-in only: VM_ACCEL=kvm.
#   VM_CPU       qemu CPU model (default max: every feature TCG emulates,
#                RDRAND among them, so the guest's RNG is ready at once)
#   VM_CACHE     where build.sh left vmlinuz and initrd.img
# Passed into the VM (in /etc/vm-env, read by /init):
#   CI                 as on the host, so tests fail rather than skip in CI
#   MESHD_E2E_LB_MODE  data plane the suite is to exercise (default ipvs)
#   VM_TEST_RUN        -test.run pattern (default: every test)
#   VM_TEST_SKIP       -test.skip pattern (default: none; the Makefile's
#                      test-vm skips the tests no data plane changes)
#   VM_TEST_ARGS       more flags for e2e.test, split on blanks
#   VM_DEBUG_CMD       a shell command /init runs before the suite, to look
#                      around the VM (e.g. 'ls -l /usr/sbin; lsmod')
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${VM_CACHE:-$repo/.cache/vm}
timeout_s=${VM_TIMEOUT:-1080}
mem=${VM_MEM:-2G}
smp=${VM_SMP:-2}
accel=${VM_ACCEL:-tcg}
cpu=${VM_CPU:-max}
log=$cache/last.log
pidfile=$cache/qemu.pid

say() { printf 'vm-run: %s\n' "$*" >&2; }
[ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.img" ] || { say "no image in $cache: run vm/build.sh"; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { say "qemu-system-x86_64 missing (scripts/deps.sh installs qemu-system-x86)"; exit 2; }

# Kill the VM on any exit (Ctrl-C, timeout, our own failure), by its PID
# and only if that PID is still qemu.
kill_qemu() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || pid=
  if [ -n "$pid" ] && grep -q qemu "/proc/$pid/comm" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    sleep 1
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$cache/run.img" "$cache/env.cpio" # run.img: 130 MB, remade each run
}
trap kill_qemu EXIT
trap 'exit 130' INT TERM
rm -f "$pidfile"

# The run's settings: a third initramfs layer holding /etc/vm-env, made here
# so that they can change without a rebuild. The kernel unpacks the
# concatenated archives in order, so this file lands on top of the others.
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
envdir=$(mktemp -d "$cache/env.XXXXXX")
mkdir -p "$envdir/etc"
{
  echo "# written by vm/run.sh"
  [ -n "${CI-}" ] && echo "export CI=$(q "$CI")"
  echo "export MESHD_E2E_LB_MODE=$(q "${MESHD_E2E_LB_MODE:-ipvs}")"
  # Software emulation runs everything 10-30x slower: the suite stretches its
  # convergence windows ("within a second") by this factor.
  echo "export MESHD_E2E_TIME_SCALE=$(q "${MESHD_E2E_TIME_SCALE:-5}")"
  echo "export MESHD_E2E_BIN=/usr/local/bin"
  # The repair figures are measured on the host; here 3 runs show IPVS
  # repaired, in the suite's time.
  echo "export MESHD_E2E_REPAIR_RUNS=$(q "${MESHD_E2E_REPAIR_RUNS:-3}")"
  # Fault injection, to show once that the suite catches a broken IPVS plane.
  [ -n "${MESHD_FAULT_IPVS_NO_DESTINATIONS-}" ] && echo "export MESHD_FAULT_IPVS_NO_DESTINATIONS=$(q "$MESHD_FAULT_IPVS_NO_DESTINATIONS")"
  # Go's test timeout fires a minute before this script kills the VM, so a
  # hang ends with the goroutine dump in the log instead of nothing.
  echo "VM_TEST_TIMEOUT=$(q "$((timeout_s > 120 ? timeout_s - 60 : timeout_s))s")"
  echo "VM_TEST_RUN=$(q "${VM_TEST_RUN-}")"
  echo "VM_TEST_SKIP=$(q "${VM_TEST_SKIP-}")"
  echo "VM_TEST_ARGS=$(q "${VM_TEST_ARGS-}")"
  echo "VM_DEBUG_CMD=$(q "${VM_DEBUG_CMD-}")"
} >"$envdir/etc/vm-env"
(cd "$envdir" && find etc -print0 | cpio --null --create --format=newc --reproducible --quiet) >"$cache/env.cpio"
rm -rf "$envdir"
cat "$cache/initrd.img" "$cache/env.cpio" >"$cache/run.img"

# Kernel command line:
#   console=ttyS0      the serial port is the console, streamed to stdout
#   panic=-1           a panic reboots at once, which -no-reboot turns into
#                      a qemu exit (no marker, so a failure) instead of a hang
#   loglevel=7         the whole boot log, so that a boot which hangs shows
#                      where; /init lowers it to warnings before the suite
#   mitigations=off    speculative-execution mitigations cost a lot in TCG
#                      and protect nothing in a throwaway VM
append="console=ttyS0 panic=-1 loglevel=7 mitigations=off"

say "booting $(cat "$cache/kernel-version" 2>/dev/null) with -accel $accel, $smp CPUs, $mem; timeout ${timeout_s}s; log $log"
start=$EPOCHREALTIME
: >"$log" # never judge a previous run's log
# The console goes to stdout through qemu's stdio chardev and, by the same
# chardev, to $log (no tee: qemu's own exit status is wanted, and a pipeline
# cannot be waited for interruptibly). stdin is /dev/null, so qemu never puts
# the terminal in raw mode. qemu runs in the background and is waited for,
# because bash runs a trap (Ctrl-C) only once a foreground command ends.
# timeout -k: TERM after $timeout_s, KILL 10 s later.
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem" \
  -nographic -monitor none -nic none -no-reboot \
  -chardev "stdio,id=console,logfile=$log,signal=off" -serial chardev:console \
  -kernel "$cache/vmlinuz" -initrd "$cache/run.img" -append "$append" \
  -pidfile "$pidfile" </dev/null &
qemu_rc=0
wait $! || qemu_rc=$?
wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
  say "FAIL: the VM did not finish within ${timeout_s}s (VM_TIMEOUT); killed after ${wall}s"
  exit 1
fi
marker=$(tr -d '\r' <"$log" | sed -n 's/^=== VM-E2E-EXIT status=\([0-9]*\) ===$/\1/p' | tail -n1)
if [ -z "$marker" ]; then
  say "FAIL: no end marker from /init (qemu exit status $qemu_rc after ${wall}s): the VM crashed or stopped early"
  exit 1
fi
if [ "$marker" -ne 0 ]; then
  say "FAIL: the e2e suite in the VM exited with status $marker (VM wall time ${wall}s)"
  exit 1
fi
say "PASS: the e2e suite passed in the VM (VM wall time ${wall}s)"
