#!/usr/bin/env bash
# The POSIX test program inside a real guest (Debian's kernel and its virtiofs driver, QEMU TCG) on vufsd, the
# sanitizer build, once per cache mode (never, auto, always; one boot each): its results must equal those of a
# native run on the host but for the differences tests/posix/known-limits.txt lists for "vufsd", "vufsd:CACHE"
# and "guest" (the test guest itself: busybox, its minimal /proc and /etc). vufsd serves extended attributes and
# POSIX and flock locks itself (as libvirt's <lock posix='on' flock='on'/> asks), so the lock cases test vufsd,
# not the guest kernel's local locks. After each poweroff vufsd must exit 0 by itself (the VMM disconnected),
# with no sanitizer report, and the guest's kernel log must hold no oops or warning.
# The guest prints vufs-posix's output between VUFS-POSIX-BEGIN and VUFS-POSIX-END lines on its serial console.
# VUFS_GUEST_PACKED=1 (guest_posix_packed.sh): the device gets packed=on, so QEMU and the guest's driver use packed
# virtqueues with vufsd, and vufsd's log must show that its queues ran packed. VUFS_GUEST_CACHES: the cache modes
# to boot (default: never auto always). VUFS_GUEST_DAX=1 (guest_posix_dax.sh): QEMU 11.1.3's generic device with a
# 64 MiB DAX window, the guest mounted dax=always (default cache mode auto only); known-limits key "vufsd:dax".
# VUFS_GUEST_FSX=OPS (guest_posix_sid.sh): the same boot then runs vufs-fsx for OPS operations in /mnt/fsx (random
# reads, writes, truncates, mmap, fallocate, copy_file_range against a model), which must print "FSX OK".
# VUFS_GUEST_VUFSD_OPTS: more vufsd options (guest_posix_packed: a worker pool of 4, whose log line at exit must
# show it served requests; guest_posix_sid: Kata Containers' --thread-pool-size=1 -o announce_submounts).
# timeout: 720
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-posix
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
SAN_BUILD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}
VUFSD=$SAN_BUILD/vufsd POSIX=$VUFS_BUILD/vufs-posix FSX_OPS=${VUFS_GUEST_FSX:-}
guest_bins=("$POSIX"); [ -n "$FSX_OPS" ] && guest_bins+=("$VUFS_BUILD/vufs-fsx")
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-$([ -n "$FSX_OPS" ] && echo 300 || echo 200)}
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] && [ -x "$POSIX" ] || fail "build first: make all && make SAN=1 all ($VUFSD, $POSIX)"
[ "$(id -u)" = 0 ] || skip "must run as root (vufs-posix switches uids; vufsd serves any owner)"
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils || fail "cannot install the guest's packages"

t0=$SECONDS
mkdir -p "$TESTDIR/native"
"$POSIX" -q "$TESTDIR/native" >"$TESTDIR/posix-native.txt"
echo "== native reference ($((SECONDS - t0))s): $(grep '^RESULT' "$TESTDIR/posix-native.txt")"
grep -q '^RESULT' "$TESTDIR/posix-native.txt" || fail "the native reference run died"

cat >"$TESTDIR/guest-posix.sh" <<'EOF'
echo VUFS-POSIX-BEGIN
vufs-posix -q /mnt
echo "VUFS-POSIX-END $?"
EOF
[ -n "$FSX_OPS" ] && cat >>"$TESTDIR/guest-posix.sh" <<EOF
mkdir /mnt/fsx && vufs-fsx -q -n $FSX_OPS -s 7 /mnt/fsx
echo "FSX-EXIT \$?"
EOF

PACKED=${VUFS_GUEST_PACKED:-}
packed_opts=()
if [ -n "$PACKED" ]; then
  export DEVICE_OPTS=packed=on
  packed_opts=(--log-level=debug)   # "queue N: started (packed, ...)" is a debug line
fi
# Debian sid's 7.2 guest (GUEST_KERNEL=sid, guest_posix_sid.sh) offers FUSE_DIRECT_IO_ALLOW_MMAP: with vufsd's
# --allow-mmap, shared writable mmap must then work in cache=never too.
# Bookworm's 6.1 guest predates FUSE_CREATE_SUPP_GROUP (Linux 6.3): known-limits key "vufsd:linux6.1".
sid_opts=() kernel_key=vufsd:linux6.1
read -r -a extra_opts <<<"${VUFS_GUEST_VUFSD_OPTS:-}"
[ "${GUEST_KERNEL:-}" = sid ] && sid_opts=(--allow-mmap) kernel_key=
DAX=${VUFS_GUEST_DAX:-}
dax_opts=() dax_guest=() dax_key=
if [ -n "$DAX" ]; then
  "$VUFS_ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || skip "QEMU 11.1 unavailable (scripts/peers/qemu111.sh)"
  dax_opts=(--tag=myfs --dax-window=64M) dax_guest=(--qemu 11.1 --device generic --mount-opts dax=always)
  dax_key=vufsd:dax
fi
problems=()
for cache in ${VUFS_GUEST_CACHES:-$([ -n "$DAX" ] && echo auto || echo never auto always)}; do
  t=$SECONDS
  share=$TESTDIR/share-$cache SOCK=$TESTDIR/vufsd-$cache.sock BACKEND_LOG=$TESTDIR/vufsd-$cache.log
  console=$TESTDIR/console-$cache.txt out=$TESTDIR/posix-$cache.txt
  mkdir -p "$share"
  for attempt in 1 2; do
    start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" --sandbox=none --seccomp=none \
                  --cache="$cache" --xattr --posix-lock --flock "${packed_opts[@]}" "${dax_opts[@]}" "${sid_opts[@]}" \
                  "${extra_opts[@]}" ||
      { cat "$BACKEND_LOG"; fail "cache=$cache: vufsd did not start"; }
    grc=0
    "$GUEST" "${dax_guest[@]}" "$SOCK" "$TESTDIR/guest-posix.sh" "${guest_bins[@]}" >"$console" 2>"$TESTDIR/guest-$cache.err" || grc=$?
    boot_crashed $grc "$console" && [ $attempt = 1 ] || break
    echo "== cache=$cache: the guest kernel died while booting ($(grep -m1 -a 'Oops\|panic' "$console")): once more"
    wait_backend_exit 20 || stop_backend 5 || true
  done
  console_section VUFS-POSIX-BEGIN VUFS-POSIX-END "$console" >"$out"
  echo "== cache=$cache: guest.sh exit $grc, $(grep '^RESULT' "$out" || echo 'no RESULT line') ($((SECONDS - t))s)"
  if [ $grc -ne 0 ]; then
    tail -n 40 "$console"; cat "$TESTDIR/guest-$cache.err"
    echo "-- vufsd's log, last lines (how far the vhost-user set-up and the FUSE session got):"
    tail -n 20 "$BACKEND_LOG"
    problems+=("cache=$cache: the guest run failed (guest.sh exit $grc: 2 = mount failed, 3 = crashed/hung)")
  fi
  if ! "$VUFS_ROOT/tests/posix/compare.sh" "$TESTDIR/posix-native.txt" "$out" vufsd "vufsd:$cache" guest $dax_key $kernel_key; then
    problems+=("cache=$cache: results differ from the native reference (DIFFERENT lines above)")
  fi
  if [ -n "$FSX_OPS" ]; then
    fsx=$(grep -a -m1 '^FSX ' "$console" || echo "no FSX line")
    echo "== cache=$cache: vufs-fsx $FSX_OPS operations: $fsx"
    grep -aq '^FSX OK' "$console" && grep -aq '^FSX-EXIT 0' "$console" ||
      problems+=("cache=$cache: vufs-fsx did not pass in the guest ($fsx)")
  fi
  if [ ${#sid_opts[@]} -gt 0 ] && ! grep -q '^PASS file_mmap_shared' "$out"; then
    problems+=("cache=$cache: shared writable mmap does not work in the 7.2 guest with --allow-mmap")
  fi
  # (the DAX window's "Cache len" line is the driver saying it found the window, not a complaint)
  if grep -E '^\[ *[0-9]+\.[0-9]+\] .*(BUG|WARNING|Oops|general protection|Call Trace|virtio_fs|virtiofs|fuse)' "$console" |
     grep -v 'Cache len:'
  then
    problems+=("cache=$cache: the guest kernel logged the lines above")
  fi
  if wait_backend_exit 15; then
    [ "$BACKEND_STATUS" -eq 0 ] || problems+=("cache=$cache: vufsd $(status_text "$BACKEND_STATUS") after the guest powered off")
  else
    problems+=("cache=$cache: vufsd still running 15s after the guest powered off")
    stop_backend 5 || true
  fi
  if sanitizer_report "$BACKEND_LOG" >/dev/null; then
    cat "$BACKEND_LOG"; problems+=("cache=$cache: sanitizer report in vufsd's log")
  fi
  if [ -n "$PACKED" ]; then
    grep -q 'started (packed' "$BACKEND_LOG" || problems+=("cache=$cache: vufsd's queues did not run packed rings")
    grep -q 'started (split' "$BACKEND_LOG" && problems+=("cache=$cache: a queue ran a split ring with packed=on")
  fi
  if [[ " ${extra_opts[*]} " =~ " --thread-pool-size="([2-9]|[1-9][0-9]+)" " ]]; then
    pool=$(grep -m1 'pool: .* threads served' "$BACKEND_LOG")
    echo "== cache=$cache: ${pool#*info: }"
    [[ $pool =~ served\ [1-9][0-9]*\ requests ]] || problems+=("cache=$cache: vufsd's pool served nothing ($pool)")
  fi
  grep -q 'frontend disconnected' "$BACKEND_LOG" || { cat "$BACKEND_LOG"; problems+=("cache=$cache: vufsd did not log the VMM's disconnect"); }
  leftover=$(find "$share" -mindepth 1 | head -5)
  [ -z "$leftover" ] || echo "note: cache=$cache: vufs-posix left in the share: $leftover"
done

echo "== total $((SECONDS - t0))s"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "guest_posix: ok"
