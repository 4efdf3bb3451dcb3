#!/usr/bin/env bash
# Tutorial 000, "Les networks dans un cluster swarm": a swarm of two nodes,
# the overlay network ovnet, a service www of two nginx replicas publishing
# 8888:80, then every namespace, rule and table the routing mesh and ovnet
# use, from the node's root namespace to the task's. docker is typed
# meshctl, /var/run/docker read /var/run/meshd. Needs node1 and node2.
#
#   ./000-swarm-networks.sh --lab-up      a lab of its own, taken down at the end
#   ./000-swarm-networks.sh --vagrant     on examples/vagrant's VMs
# shellcheck disable=SC2016 # the steps' $(...) and $VAR expand on the nodes
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tutorial_init 2 "$@"

swarm_up 2

say "The networks a swarm creates: ingress (the routing mesh) and docker_gwbridge (here mesh_gwbridge)"
run node1 "meshctl network ls"

say "An overlay network, ovnet"
run node1 "meshctl network create --driver overlay ovnet"
run node1 "meshctl network ls --filter name=ovnet"

say "A service: www, 2 replicas on ovnet, publishing 8888:80"
run node1 "meshctl service create \\
  --name www \\
  --replicas 2 \\
  --network ovnet \\
  --publish 8888:80 \\
  nginx:1.14-alpine"
run node1 "meshctl service ps www"
note "the tutorial's service inspect www, its VirtualIPs: one on ingress, one on ovnet"
run node1 "meshctl service inspect www --format '{{json .Endpoint.VirtualIPs}}' | jq ."

say "The root namespace: port 8888 is DNATed to 172.18.0.2, on the gateway bridge"
run node1 "ip a"
run node1 "iptables -t nat -nvL"
run node1 "meshctl network inspect -f '{{ .Containers }}' docker_gwbridge"

say "The other namespaces: two overlays, a task, ingress_sbox and ovnet's load balancer"
run node1 "ls /var/run/meshd/netns"
run node1 "meshctl network ls"

say "Routing mesh: ingress_sbox marks port 8888 and balances it over the tasks"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t nat -nvL"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t mangle -nvL"
show_ipvs node1 ingress "nsenter --net=/var/run/meshd/netns/ingress_sbox ipvsadm -Ln"
run node1 "meshctl network inspect -f '{{ json .Containers }}' ingress | jq ."
run node2 "meshctl network inspect -f '{{ json .Containers }}' ingress | jq ."

say "The ingress network's namespace: br0, vxlan0 and a veth per local endpoint"
run node1 'NAMESPACE_INGRESS="1-$(meshctl network ls -f name=ingress -q | cut -c 1-10)"
nsenter --net=/var/run/meshd/netns/$NAMESPACE_INGRESS ip a'

say "The task's namespace: eth0 on ingress, eth1 on ovnet, eth2 on the gateway bridge"
note "service ps is a manager's to answer; the task's namespace is on the node it runs on"
run node1 "meshctl service ps -f name=www.1 --format '{{.Node}}' www"
ctn_node=$OUT
run node1 "meshctl service ps -f name=www.1 -q www"
run "$ctn_node" "CONTAINER_NAME=www.1.$OUT
NAMESPACE_CTN=\$(meshctl inspect -f '{{ .NetworkSettings.SandboxKey }}' \$CONTAINER_NAME)
nsenter --net=\$NAMESPACE_CTN ip a"

say "Between services: ovnet's namespace, and node2's task behind node2's VTEP"
run node1 'NAMESPACE_OVNET="1-$(meshctl network ls -f name=ovnet -q | cut -c 1-10)"
nsenter --net=/var/run/meshd/netns/$NAMESPACE_OVNET ip a'
run node1 'NAMESPACE_OVNET="1-$(meshctl network ls -f name=ovnet -q | cut -c 1-10)"
nsenter --net=/var/run/meshd/netns/$NAMESPACE_OVNET bridge fdb show dev vxlan0'

say "ovnet's load balancer: www's VIP on ovnet, marked and balanced as in ingress_sbox"
run node1 "meshctl network inspect -f '{{ .Containers }}' ovnet"
lb_ns='LB_OVNET_NAMESPACE="lb_$(meshctl network ls -f name=ovnet -q | cut -c 1-9)"'
run node1 "$lb_ns
nsenter --net=/var/run/meshd/netns/\$LB_OVNET_NAMESPACE ip a"
run node1 "$lb_ns
nsenter --net=/var/run/meshd/netns/\$LB_OVNET_NAMESPACE iptables -t nat -nvL"
run node1 "$lb_ns
nsenter --net=/var/run/meshd/netns/\$LB_OVNET_NAMESPACE iptables -t mangle -nvL"
show_ipvs node1 ovnet "$lb_ns
nsenter --net=/var/run/meshd/netns/\$LB_OVNET_NAMESPACE ipvsadm -Ln"

say "What the tutorial shows, checked"
for ip in 192.168.33.10 192.168.33.11; do
	check "port 8888 answers on $ip (www's nginx)" client "curl -s -m 3 $ip:8888" "Welcome to nginx!"
done
check "www's 2 tasks run on 2 nodes (the scheduler spreads)" node1 \
	"meshctl service ps www --format '{{.Node}}' | sort -u | wc -l" "^2$"
check "www has a VIP on ingress (a /16) and one on ovnet (a /24)" node1 \
	"meshctl service inspect www --format '{{json .Endpoint.VirtualIPs}}'" \
	'"Addr":"10\.255\.[0-9]+\.[0-9]+/16".*"Addr":"10\.[0-9]+\.[0-9]+\.[0-9]+/24"'
check "the host DNATs port 8888 to ingress_sbox at 172.18.0.2" node1 \
	"iptables -t nat -nvL" "DNAT .*tcp dpt:8888 to:172\.18\.0\.2:8888"
check "ingress-sbox is on docker_gwbridge at 172.18.0.2/16" node1 \
	"meshctl network inspect -f '{{ .Containers }}' docker_gwbridge" \
	"ingress-sbox:\{gateway_ingress-sbox [0-9a-f]{64} 02:42:ac:12:00:02 172\.18\.0\.2/16"
check "ovnet has its namespace 1-<id> and its load balancer lb_<id>" node1 \
	'ID=$(meshctl network ls -f name=ovnet -q); ls /var/run/meshd/netns/1-$(echo $ID | cut -c 1-10) /var/run/meshd/netns/lb_$(echo $ID | cut -c 1-9) >/dev/null && echo both' "^both$"
check "ingress_sbox marks tcp dpt:8888" node1 \
	"nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -t mangle -nvL" "tcp dpt:8888 .*MARK set 0x[0-9a-f]+"
for network in ingress ovnet; do
	check "the $network load balancer on node1 has www's 2 tasks behind one fwmark" node1 \
		"meshctl lb ls --filter network=$network | awk '/^FWM/ {m = \$2} /->/ {n[m]++} END {for (m in n) print \"FWM \" m \": \" n[m] \" tasks\"}'" \
		"^FWM [0-9]+: 2 tasks$"
done
check "ovnet's vxlan0 on node1 sends to the other task's node (bridge fdb)" node1 \
	'nsenter --net=/var/run/meshd/netns/1-$(meshctl network ls -f name=ovnet -q | cut -c 1-10) bridge fdb show dev vxlan0' \
	"dst 192\.168\.33\.[0-9]+ .*self permanent"
check "the embedded DNS answers www with its VIP on ovnet" "$ctn_node" \
	"meshctl exec www.1 getent hosts www" "^10\.[0-9]+\.[0-9]+\.[0-9]+ +www$"
check "the embedded DNS answers tasks.www with both tasks" "$ctn_node" \
	"meshctl exec www.1 getent ahostsv4 tasks.www | awk '{print \$1}' | sort -u | wc -l" "^2$"
finish
