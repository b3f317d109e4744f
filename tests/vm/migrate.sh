#!/usr/bin/env bash
# Live-migrate a real guest with a virtio-fs share from one vhost-user-fs backend to another on this machine
# (QEMU 11.1 from Debian sid, TCG, vhost-user-fs-pci), and say whether the guest's data came through whole.
#
#   tests/vm/migrate.sh SRC_SOCKET DST_SOCKET SHARE
#
# The two backends must already listen (both serve SHARE; the destination's is used only by the destination
# QEMU). The guest (tests/vm/guest.sh --prepare-only: Debian's kernel, busybox) appends "N" to SHARE/counter.log
# every ~0.2 s through one descriptor held open all along and fsyncs it, and keeps a second file open after
# unlinking it (UNLINKED=1), writing and reading it back each tick. When the guest has written PRE_TICKS lines, the
# destination QEMU starts with -incoming, QMP "migrate" runs on the source, query-migrate is polled; on
# "completed" the source QEMU quits (as libvirt does); the destination must go on for POST_TICKS more lines; then
# the host creates SHARE/STOP, the guest checks its files, prints GUEST-SUMMARY and powers off.
#
# Prints "migration: total N ms, downtime N ms, setup N ms" and "ticks: N before, N after, counter 1..N whole".
# EXPECT=refused: the destination's backend is meant to refuse the state (CHECK_DEVICE_STATE fails, the
# destination QEMU exits after the source already said "completed"); the source is resumed (QMP cont, as a VMM
# must) and the guest must go on there for POST_TICKS more lines with its counter whole.
# Exit: 0 PASS; 1 the migration failed (or, with EXPECT=refused, succeeded) or the data is not whole (the reason
# on stderr); 3 QEMU 11.1 or the kernel cannot be had; 4 a harness error. Everything is kept in RUN (printed at the end when it fails).
# DIRTY_CHECK=1 (with a backend in cache=always): the guest also reads a new BLOB_KB KiB file each tick (NBLOBS of
# them, checked against the host's md5) and at the end reads them all again from its page cache: pages the backend
# filled during the pre-copy must have been logged dirty (VHOST_USER_SET_LOG_BASE), or the destination has stale
# copies (the kernel boots with init_on_alloc=0: zeroing pages at allocation would make QEMU see them dirty itself).
# Environment: GUEST_KERNEL (bookworm|sid), MEM (512M), PRE_TICKS (10), POST_TICKS (10), TIMEOUT (seconds per
# wait, 240), UNLINKED (1), DIRTY_CHECK (0), NBLOBS (40), BLOB_KB (1024), RUN (a fresh temp dir), KEEP=1 keeps RUN
# on success too.
set -euo pipefail
me=migrate.sh
die() { echo "$me: $*" >&2; exit 4; }
note() { echo "$me: $*" >&2; }
[ $# -eq 3 ] || { sed -n '2,6p' "$0"; exit 4; }
src_sock=$1 dst_sock=$2 share=$(realpath "$3")
[ -S "$src_sock" ] && [ -S "$dst_sock" ] || die "both backends must listen ($src_sock, $dst_sock)"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MEM=${MEM:-512M} PRE_TICKS=${PRE_TICKS:-10} POST_TICKS=${POST_TICKS:-10} TIMEOUT=${TIMEOUT:-240}
UNLINKED=${UNLINKED:-1} DIRTY_CHECK=${DIRTY_CHECK:-0} NBLOBS=${NBLOBS:-40} BLOB_KB=${BLOB_KB:-1024}
RUN=${RUN:-$(mktemp -d "${TMPDIR:-/tmp}/vufs-migrate.XXXXXX")}
mkdir -p "$RUN"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${result:-1}" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$RUN"; else note "kept: $RUN"; fi
}
trap cleanup EXIT

mapfile -t qemu < <("$top/scripts/peers/qemu111.sh" --print-prefix) || { note "QEMU 11.1 unavailable"; exit 3; }
[ ${#qemu[@]} -gt 0 ] || { note "QEMU 11.1 unavailable"; exit 3; }

rm -f "$share/counter.log" "$share/STOP" "$share/gone"
rm -rf "$share/blob" "$share/blobs.md5"
if [ "$DIRTY_CHECK" = 1 ]; then
  mkdir -p "$share/blob"
  for i in $(seq 1 "$NBLOBS"); do head -c $((BLOB_KB * 1024)) /dev/urandom >"$share/blob/b$i"; done
  for i in $(seq 1 "$NBLOBS"); do md5sum <"$share/blob/b$i" | cut -d' ' -f1; done >"$share/blobs.md5"
fi
cat >"$RUN/workload.sh" <<'GUEST'
i=0
exec 3>>/mnt/counter.log
if [ "$(cat /etc/vufs-unlinked 2>/dev/null)" = 1 ]; then
  exec 4<>/mnt/gone; rm /mnt/gone; unlinked=1
fi
errors=0
dirty=$(cat /etc/vufs-dirty-check 2>/dev/null)
blob_ok() {   # N: blob N reads as the host's md5 says (through the page cache once it holds it)
  [ "$(md5sum </mnt/blob/b$1 | cut -d' ' -f1)" = "$(sed -n "$1p" /mnt/blobs.md5)" ]
}
while [ ! -e /mnt/STOP ] && [ $i -lt 3000 ]; do
  i=$((i + 1))
  echo "$i" >&3 || errors=$((errors + 1))
  sync /mnt/counter.log || errors=$((errors + 1))
  if [ -n "$unlinked" ]; then
    echo "line $i" >&4 || errors=$((errors + 1))
    grep -q "^line $i\$" /proc/self/fd/4 || { echo "GUEST-ERR unlinked file lost line $i"; errors=$((errors + 1)); }
  fi
  if [ "$dirty" = 1 ] && [ -e /mnt/blob/b$i ]; then
    blob_ok $i || { echo "GUEST-ERR blob $i read wrong"; errors=$((errors + 1)); }
  fi
  echo "GUEST-TICK $i"
  usleep 200000
done
if [ "$dirty" = 1 ]; then   # again, from the page cache: filled on the source during the pre-copy for most
  b=1; bad=0
  while [ -e /mnt/blob/b$b ] && [ $b -le $i ]; do blob_ok $b || bad=$((bad + 1)); b=$((b + 1)); done
  echo "GUEST-DIRTY-CHECK blobs=$((b - 1)) stale=$bad"
  [ $bad = 0 ] || { echo "GUEST-ERR $bad blobs read back stale from the page cache"; errors=$((errors + 1)); }
fi
exec 3>&-
n=$(wc -l </mnt/counter.log)
[ "$n" = "$i" ] || { echo "GUEST-ERR counter.log has $n lines, wrote $i"; errors=$((errors + 1)); }
echo "GUEST-SUMMARY ticks=$i errors=$errors"
[ $errors = 0 ]
GUEST
# The guest image: guest.sh builds it; /etc/vufs-unlinked tells the workload whether to keep an unlinked file.
prep=$(PREPARE_ONLY=1 INITRD="$RUN/initrd.gz" "$top/tests/vm/guest.sh" --kernel "${GUEST_KERNEL:-bookworm}" \
       "$src_sock" "$RUN/workload.sh" 2>"$RUN/prepare.err") || { cat "$RUN/prepare.err" >&2; exit 3; }
kernel=${prep%% *}
mkdir -p "$RUN/extra/etc" && echo "$UNLINKED" >"$RUN/extra/etc/vufs-unlinked"
echo "$DIRTY_CHECK" >"$RUN/extra/etc/vufs-dirty-check"
append=""
[ "$DIRTY_CHECK" = 1 ] && append=" init_on_alloc=0"
(cd "$RUN/extra" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$RUN/extra.gz"
cat "$RUN/initrd.gz" "$RUN/extra.gz" >"$RUN/initrd-all.gz"    # the kernel unpacks concatenated archives in turn

qemu_args() {   # NAME SOCKET
  # shellcheck disable=SC2054
  printf '%s\n' -accel tcg -cpu max -smp 1 -m "$MEM" -display none -no-reboot -nic none \
    -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -numa node,memdev=mem \
    -kernel "$kernel" -initrd "$RUN/initrd-all.gz" -append "console=ttyS0 quiet panic=-1 vufs.fs=virtiofs$append" \
    -chardev "socket,id=char0,path=$2" -device vhost-user-fs-pci,chardev=char0,tag=myfs \
    -serial "file:$RUN/$1.console" -qmp "unix:$RUN/$1.qmp,server=on,wait=off" -pidfile "$RUN/$1.pid"
}
mapfile -t src_args < <(qemu_args src "$src_sock")
"${qemu[@]}" "${src_args[@]}" >"$RUN/src.out" 2>&1 &
pids+=($!)
src_qemu=$!

console() { { tr -d '\r' <"$RUN/$1.console"; } 2>/dev/null; }   # the serial console ends lines with CR LF
ticks() { console "$1" | grep -c '^GUEST-TICK' || true; }
wait_for() {   # DESCRIPTION COMMAND...: polls every 0.2 s up to TIMEOUT
  local what=$1 t=$SECONDS; shift
  until "$@"; do
    [ $((SECONDS - t)) -lt "$TIMEOUT" ] || { note "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}
enough_src() { [ "$(ticks src)" -ge "$PRE_TICKS" ]; }
result=1
wait_for "the source guest's first $PRE_TICKS ticks" enough_src || { tail -n 20 "$RUN/src.console" >&2; exit 1; }

mapfile -t dst_args < <(qemu_args dst "$dst_sock")
"${qemu[@]}" "${dst_args[@]}" -incoming "unix:$RUN/migrate.sock" >"$RUN/dst.out" 2>&1 &
pids+=($!)
dst_qemu=$!
wait_for "the destination's QMP socket" test -S "$RUN/dst.qmp" || exit 1

# QMP: migrate, poll until done, print the figures, quit the source (as libvirt does after success).
qrc=0
python3 - "$RUN" >"$RUN/qmp.txt" 2>&1 <<'PYEOF' || qrc=$?
import json, socket, sys, time
run = sys.argv[1]
def qmp(path):
    s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile('rw')
    json.loads(f.readline())
    def cmd(name, **args):
        f.write(json.dumps({"execute": name, "arguments": args}) + "\n"); f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r
    cmd("qmp_capabilities")
    return cmd
src, dst = qmp(run + "/src.qmp"), qmp(run + "/dst.qmp")
src("migrate-set-parameters", **{"max-bandwidth": 1 << 30})
print("migrate:", src("migrate", uri="unix:" + run + "/migrate.sock"))
deadline = time.time() + 240
while time.time() < deadline:
    st = src("query-migrate")["return"]
    if st.get("status") in ("completed", "failed", "cancelled"):
        break
    time.sleep(0.1)
print("source:", json.dumps(st))
if st.get("status") != "completed":
    # The switch-over failed on the source's side: QEMU resumes the guest there by itself.
    print("source resumed:", json.dumps(src("query-status")["return"]))
    sys.exit(2 if st.get("status") == "failed" else 1)
d = {}
for _ in range(100):
    try:
        d = dst("query-status")["return"]
    except (OSError, ValueError) as e:   # the destination QEMU exited: it could not load the state
        d = {"status": "gone", "error": str(e)}
        break
    if d.get("status") == "running":
        break
    time.sleep(0.1)
print("destination:", json.dumps(d))
if d.get("status") != "running":
    # The source says "completed" but the guest lives nowhere: resume it where it was, as a VMM must.
    print("source resumed:", src("cont"), json.dumps(src("query-status")["return"]))
    sys.exit(2)
print("figures: total %d ms, downtime %d ms, setup %d ms" % (st.get("total-time", -1), st.get("downtime", -1),
                                                            st.get("setup-time", -1)))
src("quit")
PYEOF
# Where the guest runs on: the destination, or (refused) the source again.
on=dst
if [ "${EXPECT:-}" = refused ]; then
  [ $qrc -eq 2 ] || { cat "$RUN/qmp.txt" >&2; note "the destination did not refuse the state (QMP exit $qrc)"; exit 1; }
  grep '^source resumed' "$RUN/qmp.txt"
  on=src
elif [ $qrc -ne 0 ]; then
  cat "$RUN/qmp.txt" >&2; note "migration failed"; exit 1
fi
grep '^figures:' "$RUN/qmp.txt" | sed 's/^figures/migration/' || true   # none when the destination refused
before=$(ticks src)
goal=$POST_TICKS
[ $on = src ] && goal=$((before + POST_TICKS))
enough_on() { [ "$(ticks $on)" -ge "$goal" ]; }
wait_for "$POST_TICKS more ticks on the $on side" enough_on || { tail -n 20 "$RUN/$on.console" >&2; exit 1; }
touch "$share/STOP"
on_qemu=$dst_qemu
[ $on = src ] && on_qemu=$src_qemu
on_done() { ! kill -0 "$on_qemu" 2>/dev/null; }
wait_for "the guest to power off ($on)" on_done || exit 1
summary=$(console $on | grep -a '^GUEST-SUMMARY' || true)
errs=$({ console src; console dst; } | grep -a '^GUEST-ERR' || true)
last=$(console $on | grep -a '^GUEST-TICK' | tail -1 | cut -d' ' -f2)
whole=no
if [ -n "$last" ] && [ "$(seq 1 "$last")" = "$(cat "$share/counter.log")" ]; then whole=yes; fi
echo "ticks: $before before, $(ticks $on) after ($on), counter 1..$last whole: $whole; $summary"
[ -z "$errs" ] || note "the guest saw errors: $errs"
if [ "$whole" = yes ] && [[ $summary == *errors=0* ]] && [ -z "$errs" ]; then
  result=0
else
  tail -n 15 "$RUN/$on.console" >&2
fi
exit $result
