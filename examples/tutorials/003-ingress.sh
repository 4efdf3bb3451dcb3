#!/usr/bin/env bash
# Tutorial 003, "Swarm 的 ingress网络" (the ingress routing mesh): a service
# web of two containous/whoami tasks on the overlay mynet publishing
# 8080:80, answering on every node of three with alternating hostnames;
# then the way in: the host's DNAT to 172.18.0.2, ingress-sbox on the
# gateway bridge, its routes, its mangle marks and its IPVS table. docker
# is typed meshctl, /var/run/docker read /var/run/meshd. Needs node1, node2
# and node3.
#
#   ./003-ingress.sh --lab-up      a lab of its own, taken down at the end
#   ./003-ingress.sh --vagrant     on examples/vagrant's VMs (MESHD_NODES=3)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tutorial_init 3 "$@"

swarm_up 3

say "A service web on the overlay mynet, publishing 8080:80"
note "mynet is the overlay the tutorial made earlier"
run node1 "meshctl network create -d overlay mynet"
run node1 "meshctl service create --name web --network mynet -p 8080:80 --replicas 2 containous/whoami"
run node1 "meshctl service ls"
run node1 "meshctl service ps web"

say "Port 8080 on every node answers, from one task or the other"
for ip in 192.168.33.10 192.168.33.11 192.168.33.12; do
	await client "curl -s -m 3 $ip:8080" "^Hostname: "
	run client "curl -s $ip:8080"
done

say "The way in on node1: the host DNATs 8080 to 172.18.0.2"
run node1 "iptables -nvL -t nat"
note "172.18.0.0/16 is the gateway bridge's (docker_gwbridge, here mesh_gwbridge); ingress-sbox holds 172.18.0.2"
run node1 "meshctl network inspect docker_gwbridge"

say "Inside ingress_sbox: eth0 on ingress, eth1 on the gateway bridge, marks and IPVS"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox ip a"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox ip route"
run node1 "nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -nvL -t mangle"
show_ipvs node1 ingress "nsenter --net=/var/run/meshd/netns/ingress_sbox ipvsadm -Ln"

say "What the tutorial shows, checked"
# Four requests to one node: round robin alternates the two tasks.
alternating="for i in 1 2 3 4; do curl -s -m 3 IP:8080 | sed -n 's/^Hostname: //p'; done |
awk '{h[NR] = \$0} END {print (h[1] != h[2] && h[1] == h[3] && h[2] == h[4] ? \"alternates\" : \"does not alternate:\"), h[1], h[2], h[3], h[4]}'"
for ip in 192.168.33.10 192.168.33.11 192.168.33.12; do
	check "port 8080 on $ip answers from both tasks in turn" client \
		"${alternating/IP/$ip}" "^alternates [0-9a-f]{12} [0-9a-f]{12} "
done
check "the host DNATs port 8080 to 172.18.0.2" node1 "iptables -nvL -t nat" "DNAT .*tcp dpt:8080 to:172\.18\.0\.2:8080( |$)"
check "ingress-sbox is on docker_gwbridge at 172.18.0.2/16" node1 "meshctl network inspect docker_gwbridge" \
	'"IPv4Address": "172\.18\.0\.2/16"'
check "ingress_sbox routes out by the gateway bridge" node1 \
	"nsenter --net=/var/run/meshd/netns/ingress_sbox ip route" "^default via 172\.18\.0\.1 dev eth1"
check "ingress_sbox marks tcp dpt:8080" node1 \
	"nsenter --net=/var/run/meshd/netns/ingress_sbox iptables -nvL -t mangle" "tcp dpt:8080 .*MARK set 0x[0-9a-f]+"
check "the ingress load balancer on node1 has web's 2 tasks behind one fwmark" node1 \
	"meshctl lb ls --filter network=ingress | awk '/^FWM/ {m = \$2} /->/ {n[m]++} END {for (m in n) print \"FWM \" m \": \" n[m] \" tasks\"}'" \
	"^FWM [0-9]+: 2 tasks$"
# exec goes to the node the task runs on, which a manager knows.
web_node=$(on node1 "meshctl service ps -f name=web.1 --format '{{.Node}}' web" </dev/null)
check "the embedded DNS answers tasks.web with both tasks" "$web_node" \
	"meshctl exec web.1 getent ahostsv4 tasks.web | awk '{print \$1}' | sort -u | wc -l" "^2$"
finish
