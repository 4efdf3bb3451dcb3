#!/usr/bin/env bash
# vm/build.sh: builds the kernel and initramfs that vm/run.sh boots.
#
# Why a VM at all: the machines this project is developed and tested on run
# a kernel without IPVS, the users' distribution kernels have it. So we boot
# a stock Debian cloud kernel (ip_vs, vxlan, veth, bridge and netfilter are
# modules there) under qemu and run the lab e2e suite inside it.
#
# Output (in $VM_CACHE, default <repo>/.cache/vm, git-ignored):
#   vmlinuz      the Debian kernel, as shipped
#   initrd.img   base layer + app layer, two cpio archives concatenated
#                (the kernel unpacks them in turn)
#
# The layers:
#   base-<key>.cpio     busybox, the host tools the lab and tests run (ip,
#                       nsenter, iptables, ipvsadm, tcpdump, ...) with their
#                       shared libraries, and the kernel modules. Slow to
#                       make, changes rarely: cached under a key that hashes
#                       everything that goes in (kernel, tool and library
#                       contents, this script).
#   app.cpio            /init, meshd, meshctl, e2e.test and lb.test, rebuilt on
#                       every run because the code changes.
#
# Only the kernel package is downloaded (apt-get download, from Debian's
# mirror); everything else comes from this machine's own Debian packages,
# installed by scripts/deps.sh. Run as root (device nodes, depmod, apt).
#
# Environment:
#   VM_KERNEL_PKG   kernel package to use (default: the one the meta-package
#                   linux-image-cloud-amd64 points at right now)
#   VM_CACHE        cache folder (default <repo>/.cache/vm)
#   VM_DEB          the Debian package (make deb) the two-VM suite installs
#                   (make test-vms sets it; without it there is none)
#   GO, BIN         go command and the folder holding meshd and meshctl,
#                   as in the Makefile (default go, bin)
# What the VM run is told (CI, test selection, ...) is set by vm/run.sh at
# boot time, in a third, tiny layer, so changing it needs no rebuild.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cache=${VM_CACHE:-$repo/.cache/vm}
GO=${GO:-go}
BIN=${BIN:-bin}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

log() { printf 'vm-build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
t0=$EPOCHREALTIME
since() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "run as root (device nodes in the image, depmod, apt-get)"

# ---------------------------------------------------------------------------
# 1. The kernel package.
#
# "The current one": the meta-package linux-image-cloud-amd64 depends on
# exactly one versioned linux-image-<abi>-cloud-amd64, the one Debian ships
# for bookworm now. Old ABIs vanish from the mirror, so a pinned name would
# break one day; resolving through the meta-package does not. The package is
# kept extracted in the cache, so a given kernel is downloaded once.
resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1
}
# Downloads and extracts kernel package $1 into $cache/kernel/<version>.
fetch_kernel() {
  local pkg=$1 ver=${1#linux-image-} dl deb
  dl=$(mktemp -d "$cache/dl.XXXXXX")
  chmod 0777 "$dl" # apt-get download runs as the sandbox user _apt, which writes here
  if ! (cd "$dl" && apt-get download -q "$pkg"); then rm -rf "$dl"; return 1; fi
  deb=$(ls "$dl"/*.deb)
  rm -rf "$cache/kernel/$ver" && mkdir -p "$cache/kernel/$ver"
  dpkg-deb -x "$deb" "$cache/kernel/$ver"
  rm -rf "$dl"
  [ -f "$cache/kernel/$ver/boot/vmlinuz-$ver" ] || die "$pkg has no boot/vmlinuz-$ver"
  # The .deb carries no modules.dep (its postinst runs depmod): make it, to
  # resolve the dependencies of the modules we pick.
  depmod -b "$cache/kernel/$ver" "$ver"
  touch "$cache/kernel/$ver/.done"
}
kpkg=${VM_KERNEL_PKG:-$(resolve_kernel)}
if [ -z "$kpkg" ]; then
  # A fresh machine may have no package lists yet.
  log "apt-get update (no package lists for linux-image-cloud-amd64)"
  apt-get update -qq
  kpkg=$(resolve_kernel)
  [ -n "$kpkg" ] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"
fi
if [ ! -f "$cache/kernel/${kpkg#linux-image-}/.done" ]; then
  log "fetching $kpkg"
  if ! fetch_kernel "$kpkg"; then
    # Stale package lists name a kernel the mirror no longer has: refresh
    # them, resolve again, retry once.
    log "apt-get download failed; retrying after apt-get update"
    apt-get update -qq
    [ -n "${VM_KERNEL_PKG:-}" ] || kpkg=$(resolve_kernel)
    [ -f "$cache/kernel/${kpkg#linux-image-}/.done" ] || fetch_kernel "$kpkg" || die "cannot download $kpkg"
  fi
  log "kernel ${kpkg#linux-image-} extracted ($(since))"
else
  log "kernel ${kpkg#linux-image-} (cached)"
fi
kver=${kpkg#linux-image-} # e.g. 6.1.0-56-cloud-amd64 (= uname -r in the VM)
kdir=$cache/kernel/$kver
kmods=$kdir/lib/modules/$kver

# ---------------------------------------------------------------------------
# 2. What goes into the base layer.

# Kernel modules, as paths under kernel/ (a folder takes everything below it).
# Generous on purpose: with kmod's modprobe and modules.alias in the image
# the kernel autoloads what meshd, iptables and ip ask for (nft chains, xt
# matches, vxlan links...), as on a real install, so new meshd features do
# not need this list touched.
module_paths=(
  net/netfilter/           # nf_conntrack, nf_nat, nf_tables, nft_*, xt_*, ipvs/ (ip_vs, ip_vs_rr, ...)
  net/ipv4/                # ipv4 netfilter (iptable_*, nft_*_ipv4), udp_tunnel, tunnels
  net/ipv6/                # the same for IPv6 (ip6_udp_tunnel, needed by vxlan)
  net/bridge/              # bridge, br_netfilter
  net/802/ net/llc/        # stp, llc: bridge needs them
  net/8021q/
  net/sched/               # tc qdiscs and classifiers
  net/xfrm/ net/key/       # xfrm_user: netlink handles open NETLINK_XFRM sockets; IPsec for encrypted overlays
  drivers/net/vxlan/ drivers/net/veth.ko drivers/net/dummy.ko
  drivers/net/macvlan.ko drivers/net/ipvlan/
  drivers/virtio/ drivers/net/virtio_net.ko # the two-VM suite's NICs (virtio-net-pci)
)

# Loaded by /init before the suite (the rest autoloads on demand).
preload_modules="ip_vs ip_vs_rr ip_vs_wrr nf_conntrack nf_nat vxlan veth bridge dummy
  nf_tables nft_compat nft_chain_nat nft_ct xt_mark xt_conntrack xt_statistic
  xt_MASQUERADE xt_comment xt_addrtype xt_nat iptable_nat iptable_filter iptable_mangle"

# Host commands copied with their libraries. The busybox applets of the same
# name lack flags the lab and tests use (nsenter --net=, unshare --propagation,
# mount --rbind, ip -d/-br, bridge fdb, tcpdump -v), so the real ones win.
#
# sh is Debian's dash, not busybox: Debian builds busybox-static with
# FEATURE_SH_STANDALONE and FEATURE_PREFER_APPLETS, so its sh (and any applet
# that runs a command: env, nsenter, xargs, ...) would run its own "ip" or
# "mount" applet even where the real program is on the PATH. The lab runs
# "sh -c '... mount --rbind ...; exec nsenter ...'", so that would break it.
# For the same reason the applets that start other programs come from the
# host too.
host_cmds=(
  sh dash env nice nohup chroot xargs find setsid flock taskset
  ip bridge                                            # iproute2
  nsenter unshare mount umount                         # util-linux
  iptables iptables-restore iptables-save              # nft backend (Debian's default)
  ip6tables ip6tables-restore ip6tables-save
  iptables-legacy iptables-legacy-restore iptables-legacy-save
  ipvsadm tcpdump ping timeout
  ps pkill sysctl ss                                   # procps, iproute2: to look around
  modprobe depmod lsmod insmod rmmod modinfo           # kmod (handles aliases for autoload)
  dpkg dpkg-split dpkg-query ldconfig tar              # the two-VM suite installs the package
)
# And every command scripts/deps.sh installs for the lab and the tests (curl,
# wget, iperf3, dig...): a tool a test starts using is then in the VM as soon
# as it is on the host, with no second list to keep. Left out: what only the
# harness itself runs on the host, and what only tests outside the VM use:
# meshctl graph's tests lay out with Graphviz's dot (which loads its
# plugins at run time, so a copied binary would not work anyway) and render
# the page in Chromium (hundreds of MB the image has no use for); make
# bench-dns runs dnsperf on the host only.
harness_only=" qemu-system-x86_64 busybox cpio lintian systemd-analyze dot chromium dnsperf "
for c in $(sed -n '/^need=(/,/^)/p' "$repo/scripts/deps.sh" | tr ' ' '\n' | sed -n 's/^\([^:(]*\):.*/\1/p'); do
  [[ $harness_only == *" $c "* ]] || host_cmds+=("$c")
done

# Files other than programs and libraries.
host_files=(
  /etc/passwd /etc/group                               # the system users tools drop privileges to (tcpdump, ...)
  /etc/protocols /etc/services /etc/ethertypes         # names iptables/tcpdump resolve
  /etc/iproute2                                        # ip's tables (rt_tables, ...)
)
xtables_dir=/usr/lib/x86_64-linux-gnu/xtables          # iptables extensions, dlopen()ed

# Maps a host path to its /usr-merged form: the image has bin, sbin, lib,
# lib64 as symlinks into usr/, as bookworm does, so every host path works.
usrpath() {
  case $1 in
    /bin/* | /sbin/* | /lib/* | /lib64/*) printf '/usr%s\n' "$1" ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# Shared libraries (and the dynamic loader) a program or library needs.
libs_of() {
  ldd "$1" 2>/dev/null | awk '
    /=> \// { print $3; next }
    /^[ \t]*\/[^ ]+ \(0x/ { print $1 }'
}

# Every command path, library path and module path going in, to hash them.
busybox=$(command -v busybox) || die "busybox missing (scripts/deps.sh installs busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked; busybox-static is needed"

declare -A cmd_path=()
for c in "${host_cmds[@]}"; do
  p=$(command -v "$c") || die "$c missing (scripts/deps.sh installs it)"
  cmd_path[$c]=$p
done

declare -A libs=()
for f in "${cmd_path[@]}" "$xtables_dir"/*.so; do
  for l in $(libs_of "$(readlink -f "$f")"); do libs[$l]=1; done
done

mods=$(
  cd "$kmods"
  for p in "${module_paths[@]}"; do
    awk -F: -v p="kernel/$p" 'index($1, p) == 1 { print $1; n = split($2, d, " "); for (i = 1; i <= n; i++) print d[i] }' modules.dep
  done | sort -u
)
[ -n "$mods" ] || die "no modules selected from $kmods/modules.dep"

# The cache key: everything that ends up in the base layer.
key=$(
  {
    echo "$kver"
    sha256sum "$0" "$busybox"
    for c in $(printf '%s\n' "${!cmd_path[@]}" | sort); do
      printf '%s %s\n' "$c" "$(readlink -f "${cmd_path[$c]}")"
      sha256sum "$(readlink -f "${cmd_path[$c]}")"
    done
    printf '%s\n' "${!libs[@]}" | sort | xargs -r sha256sum
    find "$xtables_dir" "${host_files[@]}" -type f | sort | xargs -r sha256sum
    echo "$mods"
  } | sha256sum | cut -c1-16
)
base=$cache/base-$key.cpio

# ---------------------------------------------------------------------------
# 3. The base layer (cached).
#
# cpio archives are made reproducible: sorted names, fixed mtimes, no
# inode numbers (cpio --reproducible). They are not compressed: gunzip in the
# emulated guest took 6.5 s of the boot for 60 MB, an uncompressed 130 MB
# unpacks in 2 s, and the cache has the room.
make_cpio() { # dir out
  (cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --reproducible --quiet) >"$2"
}

if [ ! -f "$base" ]; then
  log "building base layer $key"
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,run,tmp,root,var}
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  ln -s ../run "$root/var/run"
  chmod 1777 "$root/tmp"
  # The kernel opens /dev/console for init before anything is mounted.
  mknod -m 0600 "$root/dev/console" c 5 1
  mknod -m 0666 "$root/dev/null" c 1 3

  # Programs: the real file at its resolved path, and the command name as a
  # symlink to it (iptables -> xtables-nft-multi dispatches on argv[0]).
  for c in "${!cmd_path[@]}"; do
    p=$(usrpath "${cmd_path[$c]}") r=$(usrpath "$(readlink -f "${cmd_path[$c]}")")
    [ -e "$root$r" ] || install -D -m 0755 "$r" "$root$r"
    [ "$p" = "$r" ] || [ -e "$root$p" ] || { mkdir -p "$root$(dirname "$p")"; ln -s "$r" "$root$p"; }
  done
  # Libraries at the path the loader looks for (the soname), contents
  # followed through symlinks.
  for l in "${!libs[@]}"; do
    install -D -m 0755 "$(readlink -f "$l")" "$root$(usrpath "$l")"
  done
  mkdir -p "$root$xtables_dir" && cp -a "$xtables_dir"/. "$root$xtables_dir/"
  for f in "${host_files[@]}"; do
    [ -e "$f" ] && { mkdir -p "$root$(dirname "$f")"; cp -a "$f" "$root$f"; }
  done

  # busybox for the basics, for every applet no real tool above already
  # provides (mkdir, ls, cat, grep, poweroff...).
  install -m 0755 "$busybox" "$root/usr/bin/busybox"
  for a in $("$busybox" --list); do
    [ "$a" = busybox ] && continue
    if [ -z "$(find "$root/usr/bin" "$root/usr/sbin" -maxdepth 1 -name "$a" -print -quit)" ]; then
      ln -s busybox "$root/usr/bin/$a"
    fi
  done

  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
  printf '127.0.0.1 localhost vm\n' >"$root/etc/hosts"
  : >"$root/etc/resolv.conf"

  # Modules, with the files depmod reads, then depmod for the image.
  dst=$root/usr/lib/modules/$kver
  mkdir -p "$dst"
  for m in $mods; do install -D -m 0644 "$kmods/$m" "$dst/$m"; done
  cp "$kmods"/modules.order "$kmods"/modules.builtin "$kmods"/modules.builtin.modinfo "$dst/"
  depmod -b "$root" "$kver"
  printf '%s\n' $preload_modules >"$root/etc/vm-modules"

  find "$root" -mindepth 1 -exec touch -h -d @0 {} +
  make_cpio "$root" "$base.tmp" && mv "$base.tmp" "$base"
  rm -rf "$root"; trap - EXIT
  # Older base layers are garbage now.
  find "$cache" -maxdepth 1 -name 'base-*.cpio*' ! -name "base-$key.cpio" -delete
  log "base layer: $(du -h "$base" | cut -f1), $(echo "$mods" | wc -l) modules ($(since))"
else
  log "base layer $key (cached)"
fi

# ---------------------------------------------------------------------------
# 4. The app layer (every run): the code under test.
[ -x "$BIN/meshd" ] && [ -x "$BIN/meshctl" ] || die "$BIN/meshd and $BIN/meshctl missing: run make build"
log "building e2e.test, lb.test and vm-agent"
"$GO" test -c -o "$cache/e2e.test" ./mesh/e2e
"$GO" test -c -o "$cache/lb.test" ./lb
CGO_ENABLED=0 "$GO" build -o "$cache/vm-agent" ./vm/agent

app=$(mktemp -d "$cache/app.XXXXXX")
trap 'rm -rf "$app"' EXIT
mkdir -p "$app/usr/local/bin" "$app/etc"
install -m 0755 "$repo/vm/init" "$app/init"
install -m 0755 "$repo/vm/init-node" "$app/init-node" # the two-VM suite's (rdinit=/init-node)
install -m 0644 "$repo/vm/boot.sh" "$app/vm-boot.sh"
install -m 0755 "$cache/vm-agent" "$app/usr/local/bin/"
# The Debian package the two-VM suite installs, when make test-vms made one.
if [ -n "${VM_DEB:-}" ]; then install -m 0644 "$VM_DEB" "$app/meshd.deb"; fi
install -m 0755 "$BIN/meshd" "$BIN/meshctl" "$app/usr/local/bin/"
install -m 0755 "$cache/e2e.test" "$cache/lb.test" "$app/"
# The Go binaries are linked against glibc when cgo is on: their libraries
# must be in the base layer already (they are: libc and the loader).
for b in "$BIN/meshd" "$BIN/meshctl" "$cache/e2e.test" "$cache/lb.test"; do
  for l in $(libs_of "$b"); do
    [ -n "${libs[$l]-}" ] || die "$b needs $l, which the base layer lacks"
  done
done

find "$app" -mindepth 1 -exec touch -h -d @0 {} +
make_cpio "$app" "$cache/app.cpio"
rm -rf "$app"; trap - EXIT

cat "$base" "$cache/app.cpio" >"$cache/initrd.img.tmp" && mv "$cache/initrd.img.tmp" "$cache/initrd.img"
cp "$kdir/boot/vmlinuz-$kver" "$cache/vmlinuz"
echo "$kver" >"$cache/kernel-version"
log "image ready: $cache/vmlinuz, $cache/initrd.img ($(du -h "$cache/initrd.img" | cut -f1)) in $(since)"
