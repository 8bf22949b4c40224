#!/usr/bin/env bash
# Builds vigil_<version>_<arch>.deb with dpkg-deb alone (no debhelper): a
# static binary and its BGP helper (/usr/lib/vigil/vigil-bgp), the systemd unit, /etc/default/vigil, the man pages and the
# examples, with maintainer scripts that handle systemd when it runs and do
# nothing harmful when it does not (or when installing into another root).
#
#   VERSION=1.0.0 OUT=build packaging/build-deb.sh     prints the .deb's path
#
# VERSION defaults to one derived from git (a v1.2.3 tag gives 1.2.3, with
# +N.gSHA after it; no tag gives 0.0.0~gitYYYYMMDD.SHA). ARCH defaults to
# amd64. The binaries are built with CGO_ENABLED=0 unless BINARY names vigil's
# (then BGP_HELPER names vigil-bgp, by default the one beside BINARY).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

ARCH=${ARCH:-amd64}
OUT=${OUT:-build}

if [ -z "${VERSION:-}" ]; then
	if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
		VERSION=$(printf '%s' "${d#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/')
	elif sha=$(git rev-parse --short=12 HEAD 2>/dev/null); then
		VERSION="0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$sha"
	else
		VERSION=0.0.0
	fi
fi
if ! printf '%s' "$VERSION" | grep -Eq '^[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$'; then
	echo "build-deb: VERSION=$VERSION is not a Debian version" >&2
	exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/vigil-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root

install -d -m 0755 "$root/DEBIAN" "$root/usr/sbin" "$root/usr/lib/vigil" "$root/usr/lib/systemd/system" "$root/etc/default" \
	"$root/etc/vigil" "$root/usr/share/man/man8" "$root/usr/share/man/man5" \
	"$root/usr/share/doc/vigil/examples/tutorials/004-heartbeat-ha.d" "$root/usr/share/bash-completion/completions"

# vigil finds its BGP helper at /usr/lib/vigil/vigil-bgp (bgp.FindHelper).
if [ -n "${BINARY:-}" ]; then
	install -m 0755 "$BINARY" "$root/usr/sbin/vigil"
	install -m 0755 "${BGP_HELPER:-$(dirname "$BINARY")/vigil-bgp}" "$root/usr/lib/vigil/vigil-bgp"
else
	for cmd in vigil:usr/sbin/vigil vigil-bgp:usr/lib/vigil/vigil-bgp; do
		CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath \
			-ldflags "-s -w -X main.version=$VERSION" -o "$root/${cmd#*:}" "./cmd/${cmd%%:*}"
		chmod 0755 "$root/${cmd#*:}"
	done
fi

install -m 0644 packaging/vigil.service "$root/usr/lib/systemd/system/vigil.service"
install -m 0644 packaging/vigil.default "$root/etc/default/vigil"
install -m 0644 packaging/copyright "$root/usr/share/doc/vigil/copyright"
install -m 0644 packaging/vigil.conf.example packaging/hardening.conf "$root/usr/share/doc/vigil/examples/"
# An example beside where the configuration goes; the unit stays inactive
# until /etc/vigil/vigil.conf itself exists.
install -m 0644 packaging/vigil.conf.example "$root/etc/vigil/vigil.conf.example"
# The tutorials vigil runs as written, from the test suite's own copies.
seeds=internal/config/testdata/seeds
for f in 000_master 000_backup 001_master_repaired 001_backup_repaired 002_lvs_dr 002_lvs_dr_backup; do
	install -m 0644 "$seeds/$f.conf" "$root/usr/share/doc/vigil/examples/tutorials/$f.conf"
done
install -m 0644 internal/hb/hbconf/testdata/seed004/ha.cf internal/hb/hbconf/testdata/seed004/haresources \
	"$root/usr/share/doc/vigil/examples/tutorials/004-heartbeat-ha.d/"
gzip -9n -c CHANGELOG.md >"$root/usr/share/doc/vigil/changelog.gz"
printf 'vigil (%s) unstable; urgency=medium\n\n  * Upstream release; see changelog.gz.\n\n -- %s  %s\n' \
	"$VERSION" "$(sed -n 's/^Maintainer: //p' packaging/debian/control.in)" \
	"$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")" | gzip -9n >"$root/usr/share/doc/vigil/changelog.Debian.gz"
chmod 0644 "$root"/usr/share/doc/vigil/*.gz
# Completion from the commands' own flags.
go run ./cmd/vigil completion bash >"$root/usr/share/bash-completion/completions/vigil"
chmod 0644 "$root/usr/share/bash-completion/completions/vigil"
gzip -9n -c packaging/vigil.8 >"$root/usr/share/man/man8/vigil.8.gz"
gzip -9n -c packaging/vigil.conf.5 >"$root/usr/share/man/man5/vigil.conf.5.gz"
chmod 0644 "$root"/usr/share/man/man*/*.gz

for f in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$f" "$root/DEBIAN/$f"
done
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
	sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" \
	packaging/debian/control.in >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

mkdir -p "$OUT"
deb="$OUT/vigil_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
