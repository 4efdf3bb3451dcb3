#!/usr/bin/env bash
# Tutorial 002, "Overlay Networking within Swarm Mode": the ingress network
# and its hidden ingress-sbox, two tasks of a demo service pinging each
# other across the overlay while tcpdump watches vxlan0 in the network's
# namespace and the VXLAN packets on the node's own interface, then the
# routing mesh of an nginx service publishing port 80, from the host's nat
# table to ingress_sbox. docker is typed meshctl, /var/run/docker read
# /var/run/meshd. Needs node1 and node2.
#
#   ./002-overlay.sh --lab-up      a lab of its own, taken down at the end
#   ./002-overlay.sh --vagrant     on examples/vagrant's VMs
# shellcheck disable=SC2016 # the steps' $(...) and $VAR expand on the nodes
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tutorial_init 2 "$@"

swarm_up 2

say "The previous guide's demo: an overlay demonet and a service of two idle tasks"
run node1 "meshctl network create -d overlay --subnet 192.168.200.0/24 demonet"
run node1 "meshctl service create --name demoservice --replicas 2 --network demonet alpine sleep 50000"

say "Two namespaces the previous guide left aside: the ingress network's and ingress_sbox"
run node1 "ls -l /var/run/meshd/netns"
run node1 "meshctl network ls --filter name=ingress"
run node1 "meshctl network inspect ingress --format '{{json .Containers}}' | jq"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a"

say "The tasks' addresses on demonet, one task on each of two nodes"
note "in a lab of more nodes, the two the scheduler chose"
run node1 "meshctl service ps demoservice --format '{{.Node}}'"
{ read -r na; read -r nb; } <<<"$OUT"
run "$na" "meshctl ps --filter name=demoservice"
cid1=$(awk 'NR == 2 {print $1}' <<<"$OUT")
run "$na" "meshctl exec $cid1 ip a | grep 192.168.200"
addr1=$(sed -nE 's/^ *inet (192\.168\.200\.[0-9]+)\/24 .*/\1/p' <<<"$OUT")
run "$nb" "meshctl ps --filter name=demoservice"
cid2=$(awk 'NR == 2 {print $1}' <<<"$OUT")
run "$nb" "meshctl exec $cid2 ip a | grep 192.168.200"
addr2=$(sed -nE 's/^ *inet (192\.168\.200\.[0-9]+)\/24 .*/\1/p' <<<"$OUT")
run "$nb" "meshctl exec $cid2 ping -c 4 $addr1"
run "$na" "meshctl exec $cid1 ping -c 4 $addr2"
check_out "$na's task reaches $nb's across the overlay" "4 packets transmitted, 4 (packets )?received, 0% packet loss"

say "Watching the traffic: terminal 2 on vxlan0 in demonet's namespace, terminal 3 on the node's interface"
# nodeN is 192.168.33.(9+N), in the lab as on the VMs.
vtep1=192.168.33.$((9 + ${na#node})) vtep2=192.168.33.$((9 + ${nb#node}))
run node1 "meshctl network ls --filter name=demonet --format '{{.VNI}}'"
vni=$OUT
start_bg vxlan "$na" 'NS=1-$(meshctl network ls -f name=demonet -q | cut -c 1-10)
timeout 20 nsenter --net=/var/run/meshd/netns/$NS tcpdump -l -n -i vxlan0 -c 2 icmp' "listening on"
note "the node's interface on 192.168.33.0/24 (eth0 in the lab; the tutorial's ens3)"
start_bg underlay "$na" 'DEV=$(ip -o route get '"$vtep2"' | sed -E "s/.* dev ([^ ]+).*/\1/")
timeout 20 tcpdump -l -n -vv -i $DEV -c 2 udp port 4789' "listening on"
run "$na" "meshctl exec $cid1 ping -c 1 $addr2"
wait_bg vxlan
check_out "vxlan0 carries the ping between the tasks' addresses" "$addr1 > $addr2: ICMP echo request"
wait_bg underlay
check_out "the node's interface carries it as VXLAN, vni $vni, to $nb on port 4789" \
	"${vtep1//./\\.}\.[0-9]+ > ${vtep2//./\\.}\.4789: .*VXLAN.*vni $vni"

say "Routing mesh: an nginx service publishing port 80 on every node"
run node1 "meshctl service rm demoservice"
run node1 "meshctl network rm demonet"
run node1 "meshctl network create -d overlay --subnet 192.168.201.0/24 nginxnet"
run node1 "meshctl service create --replicas 2 --network nginxnet --name nginxservice --publish 80:80 nginx"
await client "curl -s -m 3 192.168.33.10:80" "Welcome to nginx!"
run client "curl -s 192.168.33.10:80"

say "Where port 80 goes: DNAT to 172.18.0.2, ingress_sbox's address on the gateway bridge"
run node1 "iptables -nvL -t nat"
note "docker_gwbridge is called mesh_gwbridge here"
run node1 "ip add show dev mesh_gwbridge"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a"

say "What the tutorial shows, checked"
for ip in 192.168.33.10 192.168.33.11; do
	check "port 80 answers on $ip (nginxservice)" client "curl -s -m 3 $ip:80" "Welcome to nginx!"
done
check "the host DNATs port 80 to 172.18.0.2" node1 "iptables -nvL -t nat" "DNAT .*tcp dpt:80 to:172\.18\.0\.2:80( |$)"
check "the gateway bridge is 172.18.0.1/16" node1 "ip add show dev mesh_gwbridge" "inet 172\.18\.0\.1/16 "
check "ingress_sbox is 172.18.0.2/16 on the gateway bridge" node1 \
	"nsenter --net=/var/run/meshd/netns/ingress_sbox ip a" "inet 172\.18\.0\.2/16 .*eth1$"
check "ingress_sbox is 10.255.0.2/16 on ingress" node1 \
	"nsenter --net=/var/run/meshd/netns/ingress_sbox ip a" "inet 10\.255\.0\.2/16 .*eth0$"
# Network inspect shows the endpoints of the node asked: one with a task.
ngx_node=$(on node1 "meshctl service ps -f name=nginxservice.1 --format '{{.Node}}' nginxservice" </dev/null)
check "nginxservice's tasks have their addresses on 192.168.201.0/24" "$ngx_node" \
	"meshctl network inspect nginxnet --format '{{json .Containers}}'" '"IPv4Address":"192\.168\.201\.[0-9]+/24"'
check "nginxnet's vxlan0 on $ngx_node sends to the other task's node (bridge fdb)" "$ngx_node" \
	'nsenter --net=/var/run/meshd/netns/1-$(meshctl network ls -f name=nginxnet -q | cut -c 1-10) bridge fdb show dev vxlan0' \
	"dst 192\.168\.33\.[0-9]+ .*self permanent"
finish
