#!/usr/bin/env bash
# Runs QEMU 11.1 (Debian sid's qemu-system-x86, 11.1.3 at the time of writing) on a Debian bookworm host, which has
# QEMU 7.2 and cannot install sid's. Why: QEMU 11.1 is the first with a virtio-fs DAX window, and only on its generic
# vhost-user device (vhost-user-test-device-pci, virtio-id=26); the window's size comes from the backend
# (VHOST_USER_PROTOCOL_F_SHMEM, GET_SHMEM_CONFIG), the tag from the backend's config space (F_CONFIG, GET_CONFIG).
#   scripts/peers/qemu111.sh --version          prepare, check, print QEMU's version line
#   scripts/peers/qemu111.sh --print-prefix     prepare, check, print the command prefix, one word per line:
#                                                 the loader, --library-path, LIBDIRS, qemu-system-x86_64, -L, DIR,
#                                                 -L, DIR (read it with: mapfile -t qemu < <(qemu111.sh --print-prefix))
#   scripts/peers/qemu111.sh QEMU-ARGS...       prepare, check, exec QEMU with QEMU-ARGS
# The first run resolves qemu-system-x86's run-time closure in the suite (libraries, firmware, sid's glibc; no
# package whose maintainer scripts would matter), downloads it with a private apt configuration
# (scripts/peers/sid-apt.sh: the host's sources, lists and package state are left alone) and unpacks it with dpkg -x
# into the cache (~35 MB of packages); later runs download nothing. QEMU then runs through the suite's own dynamic
# loader and libraries, with -L pointing at the unpacked firmware.
# Environment:
#   VUFS_PEER_CACHE   where it goes (default /var/cache/vufs-peers: qemu-SUITE/ and the lists in apt-SUITE/)
#   VUFS_PEER_SUITE   the Debian suite (default sid; trixie-backports also carries 11.1)
#   VUFS_PEER_MIRROR  the Debian mirror (default: the first one in the host's apt sources)
# Exits 3, with the reason on stderr, when QEMU cannot be had (no mirror, no network, no package, a library missing)
# or has no vhost-user-test-device-pci.
set -euo pipefail
CACHE=${VUFS_PEER_CACHE:-/var/cache/vufs-peers}
SUITE=${VUFS_PEER_SUITE:-sid}
DIR=$CACHE/qemu-$SUITE
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/peers/sid-apt.sh
. "$here/sid-apt.sh"

unavailable() { echo "qemu111.sh: $*" >&2; exit 3; }
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libs=$DIR/root/usr/lib/$multiarch:$DIR/root/lib/$multiarch
loader=$DIR/root/usr/lib/$multiarch/ld-linux-x86-64.so.2
qemu_bin=$DIR/root/usr/bin/qemu-system-x86_64

fetch() {   # into a fresh directory next to DIR, renamed into place once complete
  local tmp pkgs missing d
  sid_apt_init "$CACHE/apt-$SUITE" "$SUITE" || unavailable "$SID_APT_ERR"
  tmp=$(mktemp -d "$CACHE/.qemu.XXXXXX"); chmod 0755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  # The closure of qemu-system-x86 without recommends, reduced to libraries and firmware: the packages left out are
  # tools and data no QEMU process loads (pam, perl, systemd, installer libraries...).
  pkgs=$(sid_apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
           --no-enhances qemu-system-x86 2>/dev/null | grep -v '^[ <]' | sort -u |
         grep -E '^(qemu-system-(x86|common|data)|seabios|libc6|lib.*|zlib1g)$' |
         grep -vE '^(libperl|libpam|libsystemd-shared|libsemanage|libsepol|libdebian-installer|libdebconfclient|libnewt|libslang|libtextwrap|libreadline|libgdbm|libdb5|libasound2-data)') || true
  grep -qx qemu-system-x86 <<<"$pkgs" || unavailable "$SUITE has no qemu-system-x86"
  mkdir -p "$tmp/debs" "$tmp/root"
  # shellcheck disable=SC2086   # one word per package
  sid_apt_download "$tmp/debs" $pkgs || unavailable "$SID_APT_ERR"
  for d in "$tmp"/debs/*.deb; do dpkg-deb -x "$d" "$tmp/root"; done
  dpkg-deb -f "$tmp"/debs/qemu-system-x86_*.deb Version >"$tmp/version"
  rm -rf "$tmp/debs"
  missing=$("$tmp/root/usr/lib/$multiarch/ld-linux-x86-64.so.2" --list \
              --library-path "$tmp/root/usr/lib/$multiarch:$tmp/root/lib/$multiarch" \
              "$tmp/root/usr/bin/qemu-system-x86_64" 2>&1 | grep 'not found' || true)
  [ -z "$missing" ] || unavailable "libraries missing from the unpacked closure: $missing"
  touch "$tmp/.complete"
  rm -rf "$DIR"; mv "$tmp" "$DIR"
  trap - EXIT
}

fetch_once() { echo "qemu111.sh: fetching $SUITE's qemu-system-x86 into $DIR (once)" >&2; fetch; }
peer_once "$CACHE" "$DIR/.complete" fetch_once || unavailable "cannot create $CACHE (set VUFS_PEER_CACHE)"
prefix=("$loader" --library-path "$libs" "$qemu_bin" -L "$DIR/root/usr/share/qemu" -L "$DIR/root/usr/share/seabios")

# The generic device carries the DAX window; a QEMU without it is of no use here. (Checked on every run: ~0.1 s.)
"${prefix[@]}" -device vhost-user-test-device-pci,help 2>/dev/null | grep -q virtio-id ||
  unavailable "$("${prefix[@]}" --version 2>&1 | head -1) ($DIR) has no vhost-user-test-device-pci"

case ${1:-} in
  --print-prefix) printf '%s\n' "${prefix[@]}" ;;
  --version) "${prefix[@]}" --version | head -1 ;;
  *) exec "${prefix[@]}" "$@" ;;
esac
