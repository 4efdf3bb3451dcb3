#!/usr/bin/env bash
# Tutorial 001, the slides "Le Container Network Model": one node, no swarm
# needed. A network dev, containers that find each other by name, the
# trainingwheels app finding redis, names and aliases scoped per network,
# a chosen IP address, and a container connected to and disconnected from
# a network while it runs. docker is typed meshctl; the slides' interactive
# containers (docker run -ti ... sh) are run with their command instead.
# Needs node1.
#
#   ./001-container-network-model.sh --lab-up    a lab of its own, taken down at the end
#   ./001-container-network-model.sh --vagrant   on examples/vagrant's node1
# shellcheck disable=SC2016 # the steps' $(...) and $VAR expand on the nodes
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tutorial_init 1 "$@"

say "Create a network: dev, a bridge on this node"
run node1 "meshctl network ls"
run node1 "meshctl network create dev"
run node1 "meshctl network ls"

say "Containers on a network find each other by name"
run node1 "meshctl run -d --name es --net dev elasticsearch:2"
run node1 "meshctl run --rm --net dev alpine ping -c 3 es"

say "Service discovery: the trainingwheels web app looks for redis"
run node1 "meshctl run --net dev -d -P jpetazzo/trainingwheels"
run node1 "meshctl ps -l"
run node1 'meshctl port $(meshctl ps -lq) 5000'
app=192.168.33.10:${OUT##*:}
note "no redis yet: the app shows its error page"
await client "curl -s -m 3 $app/" "Redis connection error"
run client "curl -s $app/"
run node1 "meshctl run --net dev --name redis -d redis"
await client "curl -s -m 3 $app/" "viewed [0-9]+ times"
run client "curl -s $app/"
run client "curl -s $app/"

say "A network alias instead of a name: the count starts again on a new redis"
run node1 "meshctl rm -f redis"
run node1 "meshctl run --net dev --net-alias redis -d redis"
await client "curl -s -m 3 $app/" "viewed [0-9]+ times"
run client "curl -s $app/"

say "A name is only known on its network: the default bridge has none"
run_failing node1 "meshctl run --rm alpine ping -c 1 es"

say "Aliases are per network: two containers answer es on prod"
run node1 "meshctl network create prod"
run node1 "meshctl run -d --name prod-es-1 --net-alias es --net prod elasticsearch:2"
run node1 "meshctl run -d --name prod-es-2 --net-alias es --net prod elasticsearch:2"
run node1 "meshctl run --net prod --rm alpine nslookup es"
run node1 "meshctl run --rm --net dev centos curl -s es:9200"
run node1 "meshctl run --rm --net prod centos curl -s es:9200"
run node1 "meshctl run --rm --net prod centos curl -s es:9200"

say "A container's IP address, chosen"
run node1 "meshctl network create --subnet 10.66.0.0/16 pubnet"
run node1 "meshctl run --net pubnet --ip 10.66.66.66 -d nginx"
pub=${OUT:0:12}

say "Connect and disconnect a running container"
run node1 "meshctl run -d --name lone alpine sleep 3600"
run_failing node1 "meshctl exec lone ping -c 1 es"
run node1 "meshctl network connect dev lone"
run node1 "meshctl exec lone ping -c 2 es"
run node1 "meshctl exec lone ip a"
run node1 "meshctl network disconnect dev lone"
run_failing node1 "meshctl exec lone ping -c 1 es"

say "Reverse DNS: an address on a network answers its first alias there"
run node1 "meshctl run -d --net prod --net-alias hello alpine sleep 3600"
run node1 'meshctl inspect -f '\''{{(index .NetworkSettings.Networks "prod").IPAddress}}'\'' $(meshctl ps -lq)'
hello=$OUT
run node1 "meshctl run --net prod --rm alpine nslookup $hello"

say "What the slides show, checked"
check "dev is a local bridge network" node1 "meshctl network ls" "dev +bridge +local"
check "es answers by its name on dev" node1 \
	"meshctl run --rm --net dev alpine ping -c 1 -W 2 es" "1 packets received|1 received"
check "the app, published on a port of its own (-P), counts its views in redis" client \
	"curl -s -m 3 $app/" "This page has been viewed [0-9]+ times"
check "the node DNATs the app's port to it" node1 \
	"iptables -t nat -S | grep -- '--dport ${app##*:} '" "DNAT.*--to-destination [0-9.]+:5000"
check "es is unknown on the default bridge" node1 \
	"meshctl run --rm alpine ping -c 1 -W 1 es" "bad address 'es'"
check "es on prod answers with both prod-es containers" node1 \
	"meshctl run --net prod --rm alpine nslookup es | grep -c '^Address: [0-9.]*$'" "^2$"
check "the container on pubnet has 10.66.66.66" node1 \
	"meshctl exec $pub ip a" "inet 10\.66\.66\.66/16 "
check "lone, disconnected from dev, no longer finds es" node1 \
	"meshctl exec lone ping -c 1 -W 1 es" "bad address 'es'|Temporary failure in name resolution"
check "the reverse lookup of $hello is hello.prod" node1 \
	"meshctl run --net prod --rm alpine nslookup $hello" "name = hello\.prod"
finish
