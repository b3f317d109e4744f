# shellcheck shell=bash
# need_pkgs PKG...: installs the Debian packages that are missing (apt-get, only when one is missing; needs root
# then). Sourced by tests/vm/lib.sh (guest tests) and tests/integration/lib.sh (host tests).
need_pkgs() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || { echo "need_pkgs: missing Debian packages (run as root): ${missing[*]}" >&2; return 1; }
  echo "need_pkgs: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
