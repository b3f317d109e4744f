#!/usr/bin/env bash
# vufsd's life around a real guest (Debian's kernel, QEMU TCG), three boots:
#  a) the guest shuts down: vufsd (sanitizer build) exits 0 by itself, with no ASan/LSan/UBSan report;
#  b) QEMU is killed with SIGKILL while the guest writes and reads the share: vufsd exits within a few seconds,
#     with status 0 or 1 (not a signal) and no sanitizer report;
#  c) the plain build with its default confinement (--sandbox=namespace --seccomp=kill) serves a guest that
#     writes, reads, renames and removes files and runs the POSIX test program (many system calls); the host
#     sees the guest's files, and vufsd exits 0 at shutdown. If it is killed instead (a system call missing from
#     the seccomp allowlist kills the sandboxed process; its parent then exits 1), the same session is run again
#     with --seccomp=trap and the refused call is named.
# timeout: 420
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-lifecycle
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
SAN_BUILD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-180}
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "== $*"; }
for b in "$SAN_BUILD/vufsd" "$VUFS_BUILD/vufsd" "$VUFS_BUILD/vufs-posix"; do
  [ -x "$b" ] || fail "build first: make all && make SAN=1 all (no $b)"
done
[ "$(id -u)" = 0 ] || skip "must run as root (namespaces, and vufsd serves any owner)"
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils || fail "cannot install the guest's packages"
t0=$SECONDS

clean_log() {   # LOG WHAT
  if sanitizer_report "$1" >/dev/null; then cat "$1"; fail "$2: sanitizer report in vufsd's log"; fi
}

# --- a) clean shutdown, sanitizer build ------------------------------------------------------------------
t=$SECONDS
SOCK=$TESTDIR/a.sock BACKEND_LOG=$TESTDIR/vufsd-a.log
mkdir -p "$TESTDIR/share-a"
echo "from the host" >"$TESTDIR/share-a/host.txt"
start_backend "$SAN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$TESTDIR/share-a" --sandbox=none --seccomp=none ||
  { cat "$BACKEND_LOG"; fail "a: vufsd did not start"; }
cat >"$TESTDIR/guest-a.sh" <<'EOF'
set -e
[ "$(cat /mnt/host.txt)" = "from the host" ]
echo "from the guest" >/mnt/guest.txt
mkdir /mnt/dir; echo x >/mnt/dir/f; mv /mnt/dir/f /mnt/dir/g; rm /mnt/dir/g; rmdir /mnt/dir
[ "$(cat /mnt/guest.txt)" = "from the guest" ]
EOF
grc=0; "$GUEST" "$SOCK" "$TESTDIR/guest-a.sh" >"$TESTDIR/console-a.txt" 2>&1 || grc=$?
[ $grc -eq 0 ] || { cat "$TESTDIR/console-a.txt" "$BACKEND_LOG"; fail "a: guest run failed (guest.sh exit $grc)"; }
wait_backend_exit 15 || { cat "$BACKEND_LOG"; fail "a: vufsd still running 15s after the guest powered off"; }
clean_log "$BACKEND_LOG" a
[ "$BACKEND_STATUS" -eq 0 ] || { cat "$BACKEND_LOG"; fail "a: vufsd $(status_text "$BACKEND_STATUS") after the shutdown"; }
[ "$(cat "$TESTDIR/share-a/guest.txt" 2>/dev/null)" = "from the guest" ] || fail "a: the guest's file is not on the host"
say "a) guest shutdown: vufsd exited 0, sanitizer-clean ($((SECONDS - t))s)"

# --- b) QEMU killed (SIGKILL) during I/O, sanitizer build --------------------------------------------------
t=$SECONDS
SOCK=$TESTDIR/b.sock BACKEND_LOG=$TESTDIR/vufsd-b.log
mkdir -p "$TESTDIR/share-b"
start_backend "$SAN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$TESTDIR/share-b" --sandbox=none --seccomp=none \
              --cache=auto --xattr --posix-lock --flock ||
  { cat "$BACKEND_LOG"; fail "b: vufsd did not start"; }
cat >"$TESTDIR/guest-b.sh" <<'EOF'
# writers, readers and metadata churn on the share, until QEMU is killed
( i=0; while :; do dd if=/dev/urandom of=/mnt/w1 bs=64k count=32 conv=fsync 2>/dev/null; i=$((i + 1)); done ) &
( while :; do dd if=/dev/zero of=/mnt/w2 bs=1M count=4 2>/dev/null; cat /mnt/w2 >/dev/null; done ) &
( i=0; while :; do mkdir -p /mnt/m/$i; echo $i >/mnt/m/$i/f; ls -l /mnt/m >/dev/null; rm -r /mnt/m/$i; i=$((i + 1)); done ) &
while [ ! -s /mnt/w2 ]; do usleep 100000; done
echo GUEST-IO-RUNNING
sleep 600
EOF
"$GUEST" --pid-file="$TESTDIR/qemu-b.pid" "$SOCK" "$TESTDIR/guest-b.sh" >"$TESTDIR/console-b.txt" 2>&1 &
guest_b=$!
# shellcheck disable=SC2016   # expanded when cleanup runs
CLEANUP_CMDS+=('[ -z "${guest_b:-}" ] || { kill "$guest_b" 2>/dev/null; wait "$guest_b" 2>/dev/null; }')
for _ in $(seq 1200); do   # up to 120 s for the boot and the first writes
  grep -q GUEST-IO-RUNNING "$TESTDIR/console-b.txt" && break
  kill -0 "$guest_b" 2>/dev/null || break
  sleep 0.1
done
grep -q GUEST-IO-RUNNING "$TESTDIR/console-b.txt" || { cat "$TESTDIR/console-b.txt" "$BACKEND_LOG"; fail "b: the guest's I/O did not start"; }
sleep 3                    # let the I/O run (requests in flight on the queue)
size1=$(stat -c %s "$TESTDIR/share-b/w1" 2>/dev/null || echo 0)
qpid=$(cat "$TESTDIR/qemu-b.pid" 2>/dev/null) || fail "b: no QEMU pid file"
kill -KILL "$qpid" || fail "b: cannot kill QEMU (pid $qpid)"
killed_at=$SECONDS
wait "$guest_b"; guest_b=''
if wait_backend_exit 10; then
  say "b) QEMU killed during I/O (w1 was $size1 bytes): vufsd exited within $((SECONDS - killed_at))s, $(status_text "$BACKEND_STATUS")"
else
  cat "$BACKEND_LOG"; fail "b: vufsd still running 10s after QEMU was killed"
fi
clean_log "$BACKEND_LOG" b
case $BACKEND_STATUS in
  0|1) ;;
  *) cat "$BACKEND_LOG"; fail "b: vufsd $(status_text "$BACKEND_STATUS") after QEMU was killed (want exit 0 or 1)" ;;
esac
grep -q 'disconnected' "$BACKEND_LOG" || echo "note: b: vufsd did not log a disconnect: $(tail -n 3 "$BACKEND_LOG")"
say "b) done ($((SECONDS - t))s)"

# --- c) plain build, default sandbox and seccomp filter -----------------------------------------------------
cat >"$TESTDIR/guest-c.sh" <<'EOF'
set -e
cat /mnt/host.txt
echo "written by the guest" >/mnt/guest.txt
mkdir -p /mnt/gdir/sub
dd if=/dev/urandom of=/mnt/gdir/sub/random.bin bs=64k count=64 2>/dev/null
md5sum /mnt/gdir/sub/random.bin | cut -d' ' -f1 >/mnt/gdir/random.md5
ln -s sub/random.bin /mnt/gdir/link; ln /mnt/guest.txt /mnt/gdir/hard.txt
echo appended >>/mnt/host.txt
mv /mnt/gdir/hard.txt /mnt/gdir/renamed.txt; chmod 0640 /mnt/gdir/renamed.txt
touch /mnt/gone; rm /mnt/gone
ls -laR /mnt >/dev/null; df /mnt >/dev/null; sync
set +e
echo VUFS-POSIX-BEGIN
vufs-posix -q /mnt
echo "VUFS-POSIX-END $?"
exit 0
EOF
run_c() {   # SECCOMP-MODE: one session, sets grc and BACKEND_STATUS
  rm -rf "$TESTDIR/share-c"; mkdir -p "$TESTDIR/share-c"
  echo "from the host" >"$TESTDIR/share-c/host.txt"
  SOCK=$TESTDIR/c.sock BACKEND_LOG=$TESTDIR/vufsd-c-$1.log
  local extra=(); [ "$1" = kill ] || extra=(--seccomp="$1")     # kill: the defaults, no option at all
  start_backend "$VUFS_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$TESTDIR/share-c" ${extra[@]+"${extra[@]}"} ||
    { cat "$BACKEND_LOG"; fail "c: vufsd (seccomp $1) did not start"; }
  grc=0; "$GUEST" "$SOCK" "$TESTDIR/guest-c.sh" "$VUFS_BUILD/vufs-posix" >"$TESTDIR/console-c-$1.txt" 2>&1 || grc=$?
  if ! wait_backend_exit 15; then
    cat "$BACKEND_LOG"; fail "c: vufsd (seccomp $1) still running 15s after the guest powered off"
  fi
}
t=$SECONDS
run_c kill
if [ $grc -ne 0 ] || [ "$BACKEND_STATUS" -ne 0 ]; then
  echo "c: guest.sh exit $grc, vufsd $(status_text "$BACKEND_STATUS"); its log:"; cat "$TESTDIR/vufsd-c-kill.log"
  tail -n 30 "$TESTDIR/console-c-kill.txt"
  echo "c: running the session again with --seccomp=trap to name a refused system call"
  run_c trap
  grep -h 'seccomp refused' "$TESTDIR/vufsd-c-trap.log" && fail "c: the seccomp allowlist misses the call(s) above"
  cat "$TESTDIR/vufsd-c-trap.log"
  fail "c: the default-confined vufsd failed (no seccomp refusal named with --seccomp=trap: guest.sh exit $grc, vufsd $(status_text "$BACKEND_STATUS"))"
fi
S=$TESTDIR/share-c
[ "$(cat "$S/guest.txt" 2>/dev/null)" = "written by the guest" ] || fail "c: guest.txt is not on the host"
[ "$(printf 'from the host\nappended\n')" = "$(cat "$S/host.txt")" ] || fail "c: the guest's append is not on the host"
[ "$(md5sum <"$S/gdir/sub/random.bin" | cut -d' ' -f1)" = "$(cat "$S/gdir/random.md5" 2>/dev/null)" ] ||
  fail "c: the 4 MiB file on the host differs from what the guest wrote"
[ "$(readlink "$S/gdir/link")" = sub/random.bin ] || fail "c: symlink not on the host"
[ "$(stat -c '%h %a' "$S/gdir/renamed.txt" 2>/dev/null)" = "2 640" ] || fail "c: hard link, rename or chmod not on the host"
[ ! -e "$S/gone" ] || fail "c: a removed file is still on the host"
console_section VUFS-POSIX-BEGIN VUFS-POSIX-END "$TESTDIR/console-c-kill.txt" >"$TESTDIR/posix-c.txt"
grep -q '^RESULT' "$TESTDIR/posix-c.txt" || { cat "$TESTDIR/console-c-kill.txt"; fail "c: vufs-posix did not finish in the guest"; }
grep -v "^PASS" "$TESTDIR/posix-c.txt" | sed "s/^/   /"
say "c) default sandbox + seccomp: host sees the guest's files; vufs-posix: $(grep '^RESULT' "$TESTDIR/posix-c.txt"); vufsd exited 0 ($((SECONDS - t))s)"
say "total $((SECONDS - t0))s"
