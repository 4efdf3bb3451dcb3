#!/usr/bin/env bash
# Installs, from Debian's packages, the tools meshd, the lab and the tests
# use that this machine lacks. Each entry is "command:package".
set -euo pipefail
need=(
  ip:iproute2 bridge:iproute2 iptables:iptables iptables-restore:iptables
  nsenter:util-linux unshare:util-linux curl:curl ping:iputils-ping
  tcpdump:tcpdump pgrep:procps modprobe:kmod iperf3:iperf3 wget:wget
  dig:dnsutils nslookup:dnsutils wrk:wrk dnsmasq:dnsmasq-base
  qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio
  ipvsadm:ipvsadm depmod:kmod timeout:coreutils bash:bash setpriv:util-linux
  date:coreutils sleep:coreutils jq:jq redis-server:redis-server
  dpkg-deb:dpkg man:man-db groff:groff-base lintian:lintian systemd-analyze:systemd
  dot:graphviz chromium:chromium tini:tini dnsperf:dnsperf
  nginx:nginx haproxy:haproxy redis-benchmark:redis-tools ipset:ipset nft:nftables
)
missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! " ${missing[*]-} " == *" $pkg "* ]]; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian starts a daemon's service on install, on the host (redis-server on
# 127.0.0.1:6379, nginx on :80, haproxy): the lab runs them in its tasks'
# and nodes' namespaces only, so none is started (policy-rc.d), and none
# is left enabled for the machine's next boot.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for daemon in redis-server nginx haproxy; do
  [[ " ${missing[*]} " == *" $daemon "* ]] || continue
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$daemon.service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$daemon" ]; then
    "/etc/init.d/$daemon" stop >/dev/null 2>&1 || true
    update-rc.d "$daemon" disable >/dev/null 2>&1 || true
  fi
done
