# shellcheck shell=bash
# What the tutorials of this folder share: their options, how a step is
# printed and run on a node of the local lab or on a Vagrant VM, the
# checks at the end, and the swarm they start from. Each tutorial
# sources this file, calls tutorial_init with the number of nodes it
# needs and its arguments, runs its steps and ends with finish.
#
# Options of every tutorial, which its --help prints after its header:
#   (none)            run on the local lab that is up (meshctl lab up --nodes 3
#                     --no-swarm; a node already in a swarm skips swarm init or
#                     join) and leave it as the tutorial made it
#   --lab-up          bring up a fresh lab of the nodes the tutorial needs,
#                     outside any swarm, first, and take it down at the end,
#                     failed or not
#   --keep            with --lab-up: leave the lab up at the end, to explore
#   --lab-prefix P    the lab's prefix (or $MESHD_LAB_PREFIX), for a lab of one's own
#   --lab-root DIR    where that lab keeps its state (or $MESHD_LAB_ROOT)
#   --vagrant         run on the VMs of examples/vagrant instead ($VAGRANT_CWD
#                     says where their Vagrantfile is); the client is this host
#   --step            wait for Enter before each step
# The checks poll each observable for up to $TUT_CHECK_TIMEOUT seconds (30).
#
# A step "node1$ CMD" runs the shell command CMD on node1: in the lab,
# "meshctl lab exec node1 -- sh -c CMD"; with --vagrant, "vagrant ssh node1
# -c 'sudo sh -c CMD'". "client$ CMD" runs on the lab's client namespace
# (192.168.33.1), "host$ CMD" on this machine.

TUT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TUT_MODE=lab      # lab or vagrant
TUT_STEP=0        # 1: pause before each step
TUT_LAB_UP=0      # 1: this run brings the lab up (and down unless TUT_KEEP)
TUT_KEEP=0
TUT_OWN_LAB=0     # 1 once this run's lab up has started: lab down at exit
TUT_CHECKS=0      # checks made, and how many failed
TUT_FAILED=0
TUT_CHECK_TIMEOUT=${TUT_CHECK_TIMEOUT:-30}
TUT_TMP=""
declare -A TUT_BG=()       # background steps: name -> pid
declare -A TUT_DATAPLANE=() # node -> ipvs or iptables, as meshd chose
OUT=""            # the output of the last step, for the next ones to use

if [ -t 1 ]; then
	TUT_BOLD=$'\e[1m' TUT_DIM=$'\e[2m' TUT_RED=$'\e[31m' TUT_OFF=$'\e[0m'
else
	TUT_BOLD="" TUT_DIM="" TUT_RED="" TUT_OFF=""
fi

die() {
	printf '%s%s%s\n' "$TUT_RED" "$*" "$TUT_OFF" >&2
	exit 1
}

# usage prints the tutorial's header comment, then the options above.
usage() {
	sed -n '2,/^[^#]/{/^# shellcheck /d;s/^# \{0,1\}//p;}' "$0"
	echo
	sed -n '/^# Options of every tutorial/,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" | sed '1s/,.*/:/'
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--lab-up) TUT_LAB_UP=1 ;;
		--keep) TUT_KEEP=1 ;;
		--lab-prefix) [ $# -ge 2 ] || die "--lab-prefix needs a value"; export MESHD_LAB_PREFIX=$2; shift ;;
		--lab-prefix=*) export MESHD_LAB_PREFIX=${1#*=} ;;
		--lab-root) [ $# -ge 2 ] || die "--lab-root needs a value"; export MESHD_LAB_ROOT=$2; shift ;;
		--lab-root=*) export MESHD_LAB_ROOT=${1#*=} ;;
		--vagrant) TUT_MODE=vagrant ;;
		--step) TUT_STEP=1 ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option $1 (--help lists them)" ;;
		esac
		shift
	done
	if [ "$TUT_MODE" = vagrant ] && [ "$TUT_LAB_UP" = 1 ]; then
		die "--lab-up is for the local lab; with --vagrant, vagrant up brings the VMs up"
	fi
	if [ "$TUT_KEEP" = 1 ] && [ "$TUT_LAB_UP" = 0 ]; then
		die "--keep goes with --lab-up: without it the lab is never taken down"
	fi
}

# lab_ctl is meshctl with this run's lab: meshctl reads $MESHD_LAB_PREFIX
# itself; --lab-root has no variable of its own.
lab_ctl() {
	if [ -n "${MESHD_LAB_ROOT:-}" ]; then
		meshctl --lab-root "$MESHD_LAB_ROOT" "$@"
	else
		meshctl "$@"
	fi
}

# squote quotes a string for a POSIX shell: 'it'\''s'.
squote() {
	printf "'%s'" "${1//\'/\'\\\'\'}"
}

# on NODE CMD runs the shell command CMD on NODE (node1.., client, host),
# the one place that knows the lab from the VMs.
on() {
	local node=$1 cmd=$2
	case $TUT_MODE/$node in
	*/host | vagrant/client) sh -c "$cmd" ;;
	lab/*) lab_ctl lab exec "$node" -- sh -c "$cmd" ;;
	vagrant/*) vagrant ssh "$node" --no-tty -c "sudo sh -c $(squote "$cmd")" | tr -d '\r' ;;
	esac
}

# prompt is what a step on NODE is printed after: the VMs' client is the host.
prompt() {
	if [ "$TUT_MODE/$1" = vagrant/client ]; then echo host; else echo "$1"; fi
}

say() {
	printf '\n%s# %s%s\n' "$TUT_BOLD" "$*" "$TUT_OFF"
}

note() {
	printf '%s# %s%s\n' "$TUT_DIM" "$*" "$TUT_OFF"
}

pause() {
	if [ "$TUT_STEP" = 1 ]; then
		read -r -p "${TUT_DIM}[Enter]${TUT_OFF}" _ || true
	fi
}

show() {
	printf '%s%s$ %s%s\n' "$TUT_BOLD" "$(prompt "$1")" "$2" "$TUT_OFF"
}

# run NODE CMD prints CMD, runs it on NODE showing its output, keeps that
# in OUT, and stops the tutorial if it fails.
run() {
	local status=0
	run_status "$1" "$2" || status=$?
	if [ "$status" -ne 0 ]; then
		die "the step failed (exit status $status): $(prompt "$1")\$ $2"
	fi
}

# run_failing NODE CMD is run for a step the tutorial shows failing.
run_failing() {
	local status=0
	run_status "$1" "$2" || status=$?
	if [ "$status" -eq 0 ]; then
		note "(it succeeded: the tutorial has it fail; the checks will say more)"
	else
		note "(exit status $status, as in the tutorial)"
	fi
}

run_status() {
	local status=0
	pause
	show "$1" "$2"
	on "$1" "$2" </dev/null 2>&1 | tee "$TUT_TMP/out" || status=$?
	OUT=$(cat "$TUT_TMP/out")
	return "$status"
}

# host_meshctl ARGS... is a step on this machine's meshctl, with the lab's
# root (lab up, lab down).
host_meshctl() {
	pause
	show host "meshctl $*"
	lab_ctl "$@" </dev/null
}

# start_bg NAME NODE CMD READY runs CMD on NODE in the background, as in a
# second terminal, and returns once its output has a line matching READY
# (an extended regular expression), or fails after $TUT_CHECK_TIMEOUT s.
# wait_bg NAME waits for it to end and shows its output.
start_bg() {
	local name=$1 node=$2 cmd=$3 ready=$4 deadline=$((SECONDS + TUT_CHECK_TIMEOUT))
	pause
	show "$node" "$cmd &"
	: >"$TUT_TMP/bg-$name"
	on "$node" "$cmd" </dev/null >"$TUT_TMP/bg-$name" 2>&1 &
	TUT_BG[$name]=$!
	until grep -Eq -- "$ready" "$TUT_TMP/bg-$name"; do
		if ! kill -0 "${TUT_BG[$name]}" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			cat "$TUT_TMP/bg-$name"
			die "the background step did not become ready (no line matching $ready)"
		fi
		sleep 0.2
	done
}

wait_bg() {
	local name=$1 status=0
	wait "${TUT_BG[$name]}" || status=$?
	unset "TUT_BG[$name]"
	note "(the background step ends, exit status $status:)"
	cat "$TUT_TMP/bg-$name"
	OUT=$(cat "$TUT_TMP/bg-$name")
}

# poll NODE CMD WANT runs CMD on NODE until its output (stdout and stderr)
# has a line matching the extended regular expression WANT, for up to
# $TUT_CHECK_TIMEOUT seconds. The last output is left in POLL_OUT.
poll() {
	local node=$1 cmd=$2 want=$3 deadline=$((SECONDS + TUT_CHECK_TIMEOUT))
	while :; do
		POLL_OUT=$(on "$node" "$cmd" </dev/null 2>&1) || true
		if grep -Eq -- "$want" <<<"$POLL_OUT"; then
			return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			return 1
		fi
		sleep 0.5
	done
}

# await NODE CMD WANT waits, quietly, for what the next step shows (a
# published port programmed on every node); the tutorial stops if it
# never comes.
await() {
	if ! poll "$1" "$2" "$3"; then
		printf '%s\n' "$POLL_OUT"
		die "gave up waiting on $1 for: $2 (no line matching $3)"
	fi
}

# check WHAT NODE CMD WANT checks one observable: CMD's output on NODE has
# a line matching the extended regular expression WANT, polled as above.
# A missing one is counted and shown with what was seen instead.
check() {
	local what=$1 node=$2 cmd=$3 want=$4
	TUT_CHECKS=$((TUT_CHECKS + 1))
	if poll "$node" "$cmd" "$want"; then
		printf '  ok       %s\n' "$what"
		return 0
	fi
	TUT_FAILED=$((TUT_FAILED + 1))
	printf '  %sMISSING%s  %s\n' "$TUT_RED" "$TUT_OFF" "$what"
	printf '           %s$ %s\n' "$(prompt "$node")" "$cmd"
	printf '           printed (want a line matching %s):\n' "$want"
	indent <<<"$POLL_OUT"
}

# check_out WHAT WANT checks the output of the last step (OUT), which
# cannot be asked again (a capture, a ping before the service is gone).
check_out() {
	local what=$1 want=$2
	TUT_CHECKS=$((TUT_CHECKS + 1))
	if grep -Eq -- "$want" <<<"$OUT"; then
		printf '  ok       %s\n' "$what"
		return 0
	fi
	TUT_FAILED=$((TUT_FAILED + 1))
	printf '  %sMISSING%s  %s\n' "$TUT_RED" "$TUT_OFF" "$what"
	printf '           the step printed (want a line matching %s):\n' "$want"
	indent <<<"$OUT"
}

# indent sets what a failed check saw apart from the checks' list.
indent() {
	sed 's/^/           | /'
}

# finish says how the checks went and fails the tutorial if one did.
finish() {
	if [ "$TUT_FAILED" -gt 0 ]; then
		printf '\n%s%d of %d checks FAILED%s\n' "$TUT_RED" "$TUT_FAILED" "$TUT_CHECKS" "$TUT_OFF"
		exit 1
	fi
	printf '\n%sall %d checks passed%s\n' "$TUT_BOLD" "$TUT_CHECKS" "$TUT_OFF"
}

# dataplane NODE is what meshd chose on NODE: ipvs where the kernel has
# IPVS, else iptables. Asked once per node.
dataplane() {
	if [ -z "${TUT_DATAPLANE[$1]:-}" ]; then
		TUT_DATAPLANE[$1]=$(on "$1" "meshctl info -f '{{.DataPlane}}'" </dev/null)
	fi
	echo "${TUT_DATAPLANE[$1]}"
}

# show_ipvs NODE NETWORK CMD runs the tutorial's ipvsadm command CMD where
# meshd runs IPVS; elsewhere the kernel has none, and meshctl lb ls prints
# the iptables data plane's table as ipvsadm would.
show_ipvs() {
	local node=$1 network=$2 cmd=$3
	if [ "$(dataplane "$node")" = ipvs ]; then
		run "$node" "$cmd"
		return
	fi
	note "this kernel has no IPVS: meshd balances with iptables (the MESH-SVC chains"
	note "of the nat table), and meshctl lb ls prints that table as ipvsadm -Ln would"
	run "$node" "meshctl lb ls --filter network=$network"
}

# swarm_up N forms the tutorials' swarm as tutorial 000 does: swarm init
# on node1, swarm join on node2..N with the worker token, each skipped
# where the node is in a swarm already; then waits until node1 sees the
# N nodes Ready.
swarm_up() {
	local n=$1 i token="" state
	say "The swarm: node1 is its manager, the other nodes join it"
	state=$(on node1 "meshctl info -f '{{.LocalNodeState}}'" </dev/null)
	if [ "$state" = active ]; then
		note "node1 is in a swarm already"
	else
		run node1 "meshctl swarm init --advertise-addr 192.168.33.10"
	fi
	for ((i = 2; i <= n; i++)); do
		state=$(on "node$i" "meshctl info -f '{{.LocalNodeState}}'" </dev/null)
		if [ "$state" = active ]; then
			note "node$i is in a swarm already"
			continue
		fi
		if [ -z "$token" ]; then
			run node1 "meshctl swarm join-token -q worker"
			token=$OUT
		fi
		run "node$i" "meshctl swarm join --token $token 192.168.33.10:2377"
	done
	await node1 "meshctl info -f '{{.NodesReady}}'" "^([$n-9]|[1-9][0-9]+)$"
	run node1 "meshctl node ls"
}

# check_nodes fails early, and says how to get them, when a node the
# tutorial needs is missing.
check_nodes() {
	local n=$1 i
	for ((i = 1; i <= n; i++)); do
		if ! on "node$i" "true" </dev/null >/dev/null 2>&1; then
			if [ "$TUT_MODE" = vagrant ]; then
				die "node$i does not answer: this tutorial needs $n VMs (MESHD_NODES=$n vagrant up in examples/vagrant)"
			fi
			die "the lab has no node$i: this tutorial needs $n nodes (meshctl lab up --nodes $n --no-swarm, or run it with --lab-up)"
		fi
	done
}

# tutorial_exit ends every run, passed or failed or interrupted: it stops
# what runs in the background and takes down the lab that --lab-up made.
# A closed output (a script piped into head) must not stop the teardown:
# lab down's output is taken whole before it is printed, and a failed
# print is let go.
tutorial_exit() {
	local status=$? name out
	set +e
	trap '' PIPE
	for name in "${!TUT_BG[@]}"; do
		kill "${TUT_BG[$name]}" 2>/dev/null
	done
	if [ "$TUT_OWN_LAB" = 1 ]; then
		if [ "$TUT_KEEP" = 1 ]; then
			note "the lab stays up (--keep); meshctl lab down removes it"
		else
			show host "meshctl lab down"
			out=$(lab_ctl lab down </dev/null 2>&1) || status=1
			printf '%s\n' "$out"
		fi
	fi
	if [ -n "$TUT_TMP" ]; then
		rm -rf "$TUT_TMP"
	fi
	exit "$status"
} 2>/dev/null

# tutorial_init N ARGS... parses the tutorial's arguments, brings the lab
# up if asked, and checks that nodes node1..N answer.
tutorial_init() {
	local n=$1
	shift
	parse_args "$@"
	TUT_TMP=$(mktemp -d)
	trap tutorial_exit EXIT
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
	case $TUT_MODE in
	lab)
		command -v meshctl >/dev/null || die "meshctl is not on the PATH (make install, or PATH=\$PWD/bin:\$PATH after make build)"
		note "nodeN\$ CMD runs CMD on the lab's nodeN (meshctl lab exec nodeN -- sh -c CMD),"
		note "client\$ CMD on its client at 192.168.33.1, host\$ CMD on this machine"
		if [ "$TUT_LAB_UP" = 1 ]; then
			if on node1 true </dev/null >/dev/null 2>&1; then
				die "a lab is up already${MESHD_LAB_PREFIX:+ (prefix $MESHD_LAB_PREFIX)}: run without --lab-up to use it, or meshctl lab down first"
			fi
			TUT_OWN_LAB=1
			host_meshctl lab up --nodes "$n" --no-swarm
		fi
		;;
	vagrant)
		command -v vagrant >/dev/null || die "vagrant is not on the PATH"
		export VAGRANT_CWD=${VAGRANT_CWD:-$TUT_DIR/../vagrant}
		note "nodeN\$ CMD runs CMD on the VM nodeN (vagrant ssh nodeN -c 'sudo sh -c CMD'),"
		note "host\$ CMD on this machine, the VMs' client"
		;;
	esac
	check_nodes "$n"
}
