#!/usr/bin/env bash
# A guest whose vufsd dies: Debian sid's 7.2 kernel on QEMU 11.1.3 (vhost-user-fs-pci), vufsd --request-timeout=5
# (FUSE 7.43's FUSE_REQUEST_TIMEOUT). The guest reads a file, says it is ready; the host kills vufsd with SIGKILL
# and starts a new one on the same socket (what a supervisor would do). QEMU 11.1.3 does not bring a vhost-user-fs
# device back to a new backend (hw/virtio/vhost-user-fs.c has no chardev event handler: docs/design.md,
# "Backend restarts"), so requests the guest sends after the death are never answered by anyone: without a
# timeout its processes would wait for ever in D state. With it, asserts:
#   - the guest's first request after the death fails (the kernel aborts the connection) within 60 s, and the
#     next ones fail at once (ENOTCONN), instead of hanging;
#   - the guest unmounts and powers off cleanly (guest.sh exit 0: GUEST-SCRIPT-EXIT 0 seen, QEMU alive to the end);
#   - INIT agreed the timeout (vufsd's log), and the share on the host is untouched.
# Also reports (not asserted: QEMU's behaviour) whether QEMU connected to the new vufsd.
# timeout: 300
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-death
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
VUFSD=$VUFS_BUILD/vufsd
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] || fail "build first: make all"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs busybox-static cpio xz-utils || fail "cannot install the guest's packages"
"$VUFS_ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || skip "QEMU 11.1 unavailable (scripts/peers/qemu111.sh)"

share=$TESTDIR/share
mkdir -p "$share"
echo hello >"$share/before"
SOCK=$TESTDIR/vufsd.sock BACKEND_LOG=$TESTDIR/vufsd-1.log
start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" ${DEATH_VUFSD_OPTS---request-timeout=5} ||
  { cat "$BACKEND_LOG"; fail "vufsd did not start"; }
first=$BACKEND_PID
export WATCH_PID=   # the backend dies on purpose: QEMU must not be stopped with it

cat >"$TESTDIR/guest.sh" <<'EOF'
cat /mnt/before
touch /mnt/ready
i=0; while [ -e /mnt/ready ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done   # the host removes it, then kills
sleep 3
t0=$(date +%s); ls /mnt >/dev/null 2>/tmp/e1; r1=$?; t1=$(date +%s)
echo "DEAD-FIRST rc=$r1 secs=$((t1 - t0)) $(cat /tmp/e1)"
t0=$(date +%s); cat /mnt/before >/dev/null 2>/tmp/e2; r2=$?; t1=$(date +%s)
echo "DEAD-NEXT rc=$r2 secs=$((t1 - t0)) $(cat /tmp/e2)"
exit 0
EOF

killer() {
  local i
  for i in $(seq 1 1200); do [ -e "$share/ready" ] && break; sleep 0.2; done
  [ -e "$share/ready" ] || return
  rm -f "$share/ready"
  sleep 0.5
  kill -KILL "$first"
  echo "killed vufsd at $(date +%s)" >"$TESTDIR/killer.txt"
  sleep 0.3      # (a zombie until the test's shell reaps it: kill -0 cannot tell)
  rm -f "$SOCK"   # a killed vufsd leaves its socket file
  "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" --request-timeout=5 >"$TESTDIR/vufsd-2.log" 2>&1 &
  echo $! >"$TESTDIR/second.pid"
}
killer &
kp=$!
grc=0
"$GUEST" --qemu 11.1 --kernel sid "$SOCK" "$TESTDIR/guest.sh" >"$TESTDIR/console.txt" 2>"$TESTDIR/guest.err" || grc=$?
wait $kp 2>/dev/null
second=$(cat "$TESTDIR/second.pid" 2>/dev/null)
[ -n "$second" ] && CLEANUP_CMDS+=("kill $second 2>/dev/null")
wait "$first" 2>/dev/null
c=$TESTDIR/console.txt
problems=()
grep -q '^hello' "$c" || problems+=("the guest did not read the file before the death")
[ -s "$TESTDIR/killer.txt" ] || problems+=("the guest never said it was ready: vufsd was not killed")
first_line=$(grep -m1 '^DEAD-FIRST' "$c") next_line=$(grep -m1 '^DEAD-NEXT' "$c")
echo "== $first_line"
echo "== $next_line"
[[ $first_line == *"rc=0 "* ]] && problems+=("the guest's first request after the death succeeded")
secs=$(sed -n 's/.*secs=\([0-9]*\).*/\1/p' <<<"$first_line")
[ -n "$secs" ] && [ "$secs" -le 60 ] || problems+=("the first request after the death took ${secs:-for ever} s")
[[ $next_line == *"rc=0 "* ]] && problems+=("a request after the abort succeeded")
nsecs=$(sed -n 's/.*secs=\([0-9]*\).*/\1/p' <<<"$next_line")
[ -n "$nsecs" ] && [ "$nsecs" -le 2 ] || problems+=("a request after the abort took ${nsecs:-for ever} s")
[ $grc -eq 0 ] || { tail -n 30 "$c"; tail -n 5 "$TESTDIR/guest.err"; problems+=("guest.sh exit $grc (no clean end)"); }
grep -q 'flags 0x.*' "$TESTDIR/vufsd-1.log" || problems+=("vufsd logged no INIT")
flags=$(sed -n 's/.*agreed 7\.[0-9]*, flags 0x\([0-9a-f]*\).*/\1/p' "$TESTDIR/vufsd-1.log" | head -1)
[ -n "$flags" ] && (( (0x$flags >> 42) & 1 )) || problems+=("INIT did not agree FUSE_REQUEST_TIMEOUT (flags 0x${flags:-?})")
[ "$(cat "$share/before")" = hello ] || problems+=("the host file changed")
if grep -qi 'connect\|vhost-user' "$TESTDIR/vufsd-2.log" 2>/dev/null; then
  echo "== the new vufsd: $(grep -ci 'FUSE\|vhost' "$TESTDIR/vufsd-2.log") log lines; first: $(head -1 "$TESTDIR/vufsd-2.log")"
else
  echo "== the new vufsd: QEMU never connected to it"
fi
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "guest_backend_death: ok"
