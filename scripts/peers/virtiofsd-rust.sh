#!/usr/bin/env bash
# Runs the Rust virtiofsd (Debian sid's, 1.14 at the time of writing) on a Debian bookworm host, which packages no
# virtiofsd and whose glibc (2.36) is too old for sid's binary. All arguments go to virtiofsd:
#   scripts/peers/virtiofsd-rust.sh --version
#   scripts/peers/virtiofsd-rust.sh --socket-path=/tmp/v.sock --shared-dir=/srv/share --cache=auto
# The first run fetches the suite's virtiofsd and libc6 packages into the cache, with apt pointed at a private
# configuration (the host's sources, lists and package state are left alone), and unpacks them there; every run then
# starts virtiofsd through the suite's own dynamic loader and libc, the remaining libraries (libseccomp2, libcap-ng0,
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

unavailable() { echo "virtiofsd-rust.sh: $*" >&2; exit 3; }

host_mirror() {
  local m
  # (|| true: a missing file or no match is not an error here, whatever pipefail and set -e say)
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1) || true
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                     sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | grep -v -- '-security' | head -1) || true
  echo "$m"
}

fetch() {   # into a fresh directory next to DIR, renamed into place once complete
  local mirror tmp
  mirror=${VUFS_PEER_MIRROR:-$(host_mirror)}
  [ -n "$mirror" ] || unavailable "no Debian mirror in the apt sources (set VUFS_PEER_MIRROR)"
  tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX"); chmod 0755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"/lists/partial "$tmp"/archives/partial "$tmp"/parts
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main" > "$tmp/sources.list"
  cat > "$tmp/apt.conf" <<CONF
Dir::Etc::SourceList "$tmp/sources.list";
Dir::Etc::SourceParts "$tmp/parts";
Dir::State::Lists "$tmp/lists";
Dir::State::Status "/dev/null";
Dir::Cache "$tmp";
Dir::Cache::archives "$tmp/archives";
CONF
  APT_CONFIG=$tmp/apt.conf apt-get update -qq >"$tmp/apt.log" 2>&1 ||
    unavailable "apt-get update of $SUITE from $mirror failed: $(grep -m1 -E '^E:' "$tmp/apt.log" || tail -n 1 "$tmp/apt.log")"
  (cd "$tmp" && APT_CONFIG=$tmp/apt.conf apt-get download -qq virtiofsd libc6 >>"$tmp/apt.log" 2>&1) ||
    unavailable "$SUITE has no virtiofsd or libc6 to download from $mirror: $(grep -m1 -E '^E:' "$tmp/apt.log" || tail -n 1 "$tmp/apt.log")"
  dpkg-deb -x "$tmp"/virtiofsd_*.deb "$tmp/virtiofsd"
  dpkg-deb -x "$tmp"/libc6_*.deb "$tmp/libc"
  dpkg-deb -f "$tmp"/virtiofsd_*.deb Version > "$tmp/version"
  rm -rf "$tmp"/lists "$tmp"/archives "$tmp"/*.deb "$tmp"/*.bin
  rm -rf "$DIR"; mv "$tmp" "$DIR"
  trap - EXIT
}

if [ ! -x "$DIR/virtiofsd/usr/libexec/virtiofsd" ]; then
  mkdir -p "$CACHE" 2>/dev/null || unavailable "cannot create $CACHE (set VUFS_PEER_CACHE)"
  exec 9>"$CACHE/.lock"
  flock 9   # a second first run waits for the first one's download
  [ -x "$DIR/virtiofsd/usr/libexec/virtiofsd" ] || fetch
  exec 9>&-
fi
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libs=$DIR/libc/usr/lib/$multiarch
loader=$(find "$libs" -maxdepth 1 -name 'ld-linux*.so.*' | head -1)
[ -n "$loader" ] || unavailable "no dynamic loader in $libs"
exec "$loader" --library-path "$libs:/lib/$multiarch:/usr/lib/$multiarch" "$DIR/virtiofsd/usr/libexec/virtiofsd" "$@"
