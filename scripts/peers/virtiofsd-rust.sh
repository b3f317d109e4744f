#!/usr/bin/env bash
# Runs the Rust virtiofsd (Debian sid's, 1.14 at the time of writing) on a Debian bookworm host, which packages no
# virtiofsd and whose glibc (2.36) is too old for sid's binary. All arguments go to virtiofsd:
#   scripts/peers/virtiofsd-rust.sh --version
#   scripts/peers/virtiofsd-rust.sh --socket-path=/tmp/v.sock --shared-dir=/srv/share --cache=auto
# The first run fetches the suite's virtiofsd and libc6 packages into the cache, with apt pointed at a private
# configuration (scripts/peers/sid-apt.sh: the host's sources, lists and package state are left alone; the
# suite's lists stay in the cache's apt-SUITE/, shared with scripts/peers/qemu111.sh), and unpacks them there; every
# run then starts virtiofsd through the suite's own dynamic loader and libc, the remaining libraries (libseccomp2, libcap-ng0,
# libgcc-s1) coming from the host. The approach is the one of the dev machines' ../shared/peers/virtiofsd-rust.sh.
# Environment:
#   VUFS_PEER_CACHE   where the packages go (default /var/cache/vufs-peers; needs write access on the first run)
#   VUFS_PEER_SUITE   the Debian suite to take virtiofsd from (default sid; trixie has 1.13)
#   VUFS_PEER_MIRROR  the Debian mirror (default: the first one in the host's apt sources)
# Exits 3, with the reason on stderr, when the packages cannot be had (no mirror, no network, no such package).
set -euo pipefail
CACHE=${VUFS_PEER_CACHE:-/var/cache/vufs-peers}
SUITE=${VUFS_PEER_SUITE:-sid}
DIR=$CACHE/virtiofsd-rust-$SUITE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/peers/sid-apt.sh
. "$here/sid-apt.sh"

unavailable() { echo "virtiofsd-rust.sh: $*" >&2; exit 3; }

fetch() {   # into a fresh directory next to DIR, renamed into place once complete
  local tmp
  sid_apt_init "$CACHE/apt-$SUITE" "$SUITE" || unavailable "$SID_APT_ERR"
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX"); chmod 0755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  sid_apt_download "$tmp" virtiofsd libc6 || unavailable "$SUITE has no virtiofsd or libc6: $SID_APT_ERR"
  dpkg-deb -x "$tmp"/virtiofsd_*.deb "$tmp/virtiofsd"
  dpkg-deb -x "$tmp"/libc6_*.deb "$tmp/libc"
  dpkg-deb -f "$tmp"/virtiofsd_*.deb Version > "$tmp/version"
  rm -f "$tmp"/*.deb
  rm -rf "$DIR"; mv "$tmp" "$DIR"
  trap - EXIT
}

peer_once "$CACHE" "$DIR/virtiofsd/usr/libexec/virtiofsd" fetch || unavailable "cannot create $CACHE (set VUFS_PEER_CACHE)"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libs=$DIR/libc/usr/lib/$multiarch
loader=$(find "$libs" -maxdepth 1 -name 'ld-linux*.so.*' | head -1)
[ -n "$loader" ] || unavailable "no dynamic loader in $libs"
exec "$loader" --library-path "$libs:/lib/$multiarch:/usr/lib/$multiarch" "$DIR/virtiofsd/usr/libexec/virtiofsd" "$@"
