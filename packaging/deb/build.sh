#!/bin/sh
# Builds the Debian package of meshd and meshctl with dpkg-deb alone:
# "make deb". Runs on Linux and on macOS (with Homebrew's dpkg), for
# GOOS=linux and any GOARCH Debian has. The package lands in $DIST
# (default dist/), git-ignored.
#
# Environment: GO (go), GOARCH (the package's architecture; default go's),
# DIST, DEB_VERSION (default: meshd's own version, api.Version, made a
# Debian version: 0.1.0-dev is 0.1.0~dev-1), DEB_MAINTAINER,
# DEB_GOFLAGS (default -trimpath), SOURCE_DATE_EPOCH (default: the last
# commit's time, so that two builds of one commit are the same package).
set -eu

cd "$(dirname "$0")/../.."
pkgdir=packaging/deb
GO=${GO:-go}
DIST=${DIST:-dist}
DEB_MAINTAINER=${DEB_MAINTAINER:-meshd developers <meshd@example.org>}
DEB_GOFLAGS=${DEB_GOFLAGS--trimpath}

die() { echo "make deb: $*" >&2; exit 1; }

if [ -n "${GOOS:-}" ] && [ "$GOOS" != linux ]; then
	die "GOOS=$GOOS: the package is for Linux; build it with GOOS=linux"
fi
command -v dpkg-deb >/dev/null 2>&1 ||
	die "dpkg-deb not found: apt-get install dpkg (Debian, Ubuntu) or brew install dpkg (macOS)"

goarch=${GOARCH:-}
[ -n "$goarch" ] || goarch=$(GOOS=linux "$GO" env GOARCH)
case $goarch in
amd64 | arm64 | riscv64 | ppc64le | s390x) arch=$goarch ;;
386) arch=i386 ;;
arm) arch=armhf ;;
*) die "GOARCH=$goarch has no Debian architecture here" ;;
esac

# The tools run here, on the machine that builds, whatever it is.
hostos=$("$GO" env GOHOSTOS)
hostarch=$("$GO" env GOHOSTARCH)

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

work="$DIST/.build"
rm -rf "$work"
mkdir -p "$work"
root="$work/root"

# meshctl with its hidden documentation command (-tags gendocs), for this
# machine: it prints the version and writes the man pages and completion.
# Built as the package's binaries are, it shares their compiled packages
# when this machine is the target.
# shellcheck disable=SC2086 # DEB_GOFLAGS is a list of flags
GOOS=$hostos GOARCH=$hostarch CGO_ENABLED=0 "$GO" build $DEB_GOFLAGS -tags gendocs -o "$work/meshctl-gendocs" ./cmd/meshctl
upstream=$("$work/meshctl-gendocs" version | awk '{print $2}')
[ -n "$upstream" ] || die "no version from meshctl version"
version=${DEB_VERSION:-$(echo "$upstream" | tr - '~')-1}
"$work/meshctl-gendocs" __gendocs "$work/docs"

# The binaries, static (no libc to match on the target), stripped.
mkdir -p "$work/bin"
# shellcheck disable=SC2086
GOOS=linux GOARCH=$goarch CGO_ENABLED=0 "$GO" build $DEB_GOFLAGS -ldflags "-s -w -buildid=" \
	-o "$work/bin/" ./cmd/meshd ./cmd/meshctl

d() { install -d -m 0755 "$root/$1"; }
f() { install -m "$1" "$2" "$root/$3"; }
d DEBIAN
d usr/bin
d lib/systemd/system
d etc/default
d usr/share/bash-completion/completions
d usr/share/man/man1
d usr/share/man/man8
d usr/share/doc/meshd
d usr/share/lintian/overrides
f 0755 "$work/bin/meshd" usr/bin/meshd
f 0755 "$work/bin/meshctl" usr/bin/meshctl
f 0644 "$pkgdir/meshd.service" lib/systemd/system/meshd.service
f 0644 "$pkgdir/default" etc/default/meshd
f 0644 "$work/docs/bash-completion/meshctl" usr/share/bash-completion/completions/meshctl
f 0644 "$pkgdir/copyright" usr/share/doc/meshd/copyright
f 0644 "$pkgdir/lintian-overrides" usr/share/lintian/overrides/meshd
for page in "$work"/docs/man1/*.1; do
	f 0644 "$page" "usr/share/man/man1/$(basename "$page")"
done
f 0644 "$pkgdir/meshd.8" usr/share/man/man8/meshd.8
gzip -9n "$root"/usr/share/man/man1/*.1 "$root/usr/share/man/man8/meshd.8"

# changelog.Debian: one entry for this build, dated as the commit.
date=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S +0000' 2>/dev/null ||
	LC_ALL=C date -u -r "$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S +0000')
cat >"$work/changelog.Debian" <<CHANGELOG
meshd ($version) unstable; urgency=medium

  * Built from the meshd source tree with "make deb".

 -- $DEB_MAINTAINER  $date
CHANGELOG
gzip -9nc "$work/changelog.Debian" >"$root/usr/share/doc/meshd/changelog.Debian.gz"
chmod 0644 "$root/usr/share/doc/meshd/changelog.Debian.gz"

f 0644 "$pkgdir/conffiles" DEBIAN/conffiles
for script in postinst prerm postrm; do
	f 0755 "$pkgdir/$script" "DEBIAN/$script"
done
(
	cd "$root"
	find usr lib -type f | LC_ALL=C sort | while read -r file; do
		if command -v md5sum >/dev/null 2>&1; then
			md5sum "$file"
		else
			echo "$(md5 -q "$file")  $file"
		fi
	done
) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(cd "$root" && du -sk usr lib etc | awk '{s += $1} END {print s}')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	-e "s|@MAINTAINER@|$DEB_MAINTAINER|" "$pkgdir/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

deb="$DIST/meshd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
rm -rf "$work"
echo "$deb"
