# shellcheck shell=bash
# A private apt configuration that sees another Debian suite (sid by default) from a bookworm host, for the scripts
# that fetch and unpack (dpkg -x, nothing installed) packages bookworm lacks. Source it:
#   . scripts/peers/sid-apt.sh
#   sid_apt_init DIR SUITE     writes DIR/apt.conf (and DIR/sources.list) for SUITE on the host's mirror (or
#                              $VUFS_PEER_MIRROR) and fetches its package lists into DIR/lists once; the host's
#                              sources, lists and package state are never touched. Sets SID_APT_DIR. On failure
#                              returns 1 with the reason in SID_APT_ERR.
#   sid_apt CMD ARGS...        runs an apt command (apt-get, apt-cache) with that configuration
#   sid_apt_refresh            fetches the lists again (stale lists name packages the mirror no longer has)
#   sid_apt_download DEST PKG...  apt-get download into directory DEST; on failure refreshes the lists once and
#                              retries. Returns 1 with SID_APT_ERR set.
#   peer_once CACHE MARKER CMD...  unless file MARKER exists, creates CACHE and runs CMD holding CACHE/.lock (a second
#                              first run waits for the first one, then finds MARKER). Returns 1 if CACHE cannot be made.
#   host_mirror                prints the first Debian mirror of the host's apt sources (deb822 or one-line)

host_mirror() {
  local m
  # (|| true: a missing file or no match is not an error here, whatever pipefail and set -e say)
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1) || true
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                     sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | grep -v -- '-security' | head -1) || true
  echo "$m"
}

sid_apt() { APT_CONFIG=$SID_APT_DIR/apt.conf "$@"; }

sid_apt_err() {   # LOG: the first apt error of LOG, else its last line
  grep -m1 -E '^[EW]:' "$1" 2>/dev/null || tail -n 1 "$1" 2>/dev/null
}

sid_apt_refresh() {
  # (apt-get update may exit 0 when the mirror cannot be reached: check that a package list arrived)
  if ! sid_apt apt-get update -qq >"$SID_APT_DIR/update.log" 2>&1 ||
     ! compgen -G "$SID_APT_DIR/lists/*_Packages*" >/dev/null; then
    SID_APT_ERR="apt-get update of $(cat "$SID_APT_DIR/suite") failed: $(sid_apt_err "$SID_APT_DIR/update.log")"
    return 1
  fi
  touch "$SID_APT_DIR/lists/.complete"
}

sid_apt_init() {   # DIR SUITE
  local dir=$1 suite=$2 mirror
  SID_APT_DIR=$dir SID_APT_ERR=
  [ -f "$dir/lists/.complete" ] && return 0
  mirror=${VUFS_PEER_MIRROR:-$(host_mirror)}
  [ -n "$mirror" ] || { SID_APT_ERR="no Debian mirror in the apt sources (set VUFS_PEER_MIRROR)"; return 1; }
  mkdir -p "$dir"/lists/partial "$dir"/archives/partial "$dir"/parts ||
    { SID_APT_ERR="cannot create $dir"; return 1; }
  echo "$suite" >"$dir/suite"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$dir/sources.list"
  cat >"$dir/apt.conf" <<CONF
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/parts";
Dir::State::Lists "$dir/lists";
Dir::State::Status "/dev/null";
Dir::Cache "$dir";
Dir::Cache::archives "$dir/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
CONF
  sid_apt_refresh
}

sid_apt_download() {   # DEST PKG...
  local dest=$1 log; shift
  log=$(mktemp "${TMPDIR:-/tmp}/sid-apt.XXXXXX")
  if ! (cd "$dest" && sid_apt apt-get download -qq "$@") >"$log" 2>&1; then
    if ! { sid_apt_refresh && (cd "$dest" && sid_apt apt-get download -qq "$@") >"$log" 2>&1; }; then
      [ -n "$SID_APT_ERR" ] || SID_APT_ERR="apt-get download $* failed: $(sid_apt_err "$log")"
      rm -f "$log"; return 1
    fi
  fi
  rm -f "$log"
}

peer_once() {   # CACHE MARKER CMD...
  local cache=$1 marker=$2; shift 2
  [ -e "$marker" ] && return 0
  mkdir -p "$cache" 2>/dev/null || return 1
  exec 9>"$cache/.lock"
  flock 9
  [ -e "$marker" ] || "$@"
  exec 9>&-
}
