#!/usr/bin/env bash
# Proves vufsd withstands a malicious VMM and guest (build/vufs-hostile: hostile FUSE requests, forged virtqueue
# chains, bad vhost-user messages) in every sandbox mode -- the ASan/UBSan build unconfined (--sandbox=none
# --seccomp=none, so memory errors are reported) and the plain build in its namespace and chroot sandboxes with
# the default seccomp filter (kill): every check passes, the daemon never dies from a signal or reports a
# sanitizer error, exits when its frontend goes away, and canaries outside the share stay untouched. The ASan run
# and the chroot run serve through a worker pool of 4 (--thread-pool-size=4): hostile chains, memory changes and
# ring resets then meet requests in flight on other threads; the namespace run serves on the queue threads.
# timeout: 600
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hostile_lib.sh"

SAN_BUILD=${VUFS_SAN_BUILD:-$PWD/build-san}
PLAIN_BUILD=${VUFS_BUILD:-$PWD/build}
[ -x "$SAN_BUILD/vufsd" ] || skip "$SAN_BUILD/vufsd is not built (make SAN=1)"
[ -x "$PLAIN_BUILD/vufsd" ] || skip "$PLAIN_BUILD/vufsd is not built"
[ "$(id -u)" = 0 ] || skip "the sandboxes and the device-node checks need root"

# Every feature that widens what a guest can reach is on: xattrs, POSIX and flock locks.
FEATURES="--xattr --posix-lock --flock"
failed=0
declare -A RESULTS
for mode in san-none namespace chroot; do
  RESULTS[$mode]=$SCRATCH/results.$mode
  case $mode in
    san-none)  hostile_run "$mode" "${RESULTS[$mode]}" "$SAN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" \
                 --sandbox=none --seccomp=none --thread-pool-size=4 $FEATURES ;;
    namespace) hostile_run "$mode" "${RESULTS[$mode]}" "$PLAIN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" \
                 --sandbox=namespace $FEATURES ;;
    chroot)    hostile_run "$mode" "${RESULTS[$mode]}" "$PLAIN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" \
                 --sandbox=chroot --thread-pool-size=4 $FEATURES ;;
  esac
  failed=$((failed + $(hostile_failed "${RESULTS[$mode]}")))
done

echo
hostile_table "vufsd ASan, no sandbox, pool of 4" "${RESULTS[san-none]}" "vufsd namespace+seccomp" \
  "${RESULTS[namespace]}" "vufsd chroot+seccomp, pool of 4" "${RESULTS[chroot]}"
echo
why=$(hostile_host_intact) || fail "outside the share: $why"
[ "$failed" -eq 0 ] || fail "$failed failed checks (over 3 sandbox modes)"
echo "vufsd: every hostile check passed in every sandbox mode"
