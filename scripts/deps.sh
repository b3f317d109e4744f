#!/usr/bin/env bash
# Install the Debian packages a target needs, only those missing (idempotent).
#   scripts/deps.sh build|check|demo|bench|fuzz|acl
set -euo pipefail
build=(gcc make pkg-config libseccomp-dev libcap-ng-dev libcmocka-dev)
check=("${build[@]}" qemu-system-x86 qemu-system-common busybox-static cpio xz-utils fuse3 fio attr acl)
acl=(acl attr)
demo=(qemu-system-x86 qemu-system-common busybox-static cpio xz-utils)
bench=("${check[@]}" fio)
fuzz=(clang libclang-rt-14-dev)
case ${1:-build} in
  build) want=("${build[@]}") ;; check) want=("${check[@]}") ;; demo) want=("${build[@]}" "${demo[@]}") ;;
  bench) want=("${bench[@]}") ;; acl) want=("${acl[@]}") ;; fuzz) want=("${build[@]}" "${fuzz[@]}") ;;
  *) echo "deps.sh: unknown target $1" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
