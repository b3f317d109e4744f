#!/usr/bin/env bash
# Multiqueue in a real guest: Debian sid's 7.2 kernel (its virtiofs driver spreads requests over the request queues
# by CPU, since Linux 6.11) with 2 vCPUs on QEMU 11.1.3's vhost-user-fs-pci, num-request-queues=2, against vufsd
# --queues=2 (sanitizer build, cache=never so that every stat and read reaches vufsd). Two processes pinned to the
# two vCPUs (taskset) stat and read files at once; vufsd's per-queue counts at exit must show both request queues
# serving at least 200 requests each, the files must read back right, and vufsd must exit 0 with no sanitizer
# report. Prints the split and the time of the parallel phase with 1 and with 2 queues (TCG on 2 host cores: the
# figure shows that nothing serialises the queues, not a speed-up the emulation allows).
# timeout: 400
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-mq
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
VUFSD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}/vufsd
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-240}
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] || fail "build first: make SAN=1 all"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs busybox-static cpio xz-utils || fail "cannot install the guest's packages"
"$VUFS_ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || skip "QEMU 11.1 unavailable (scripts/peers/qemu111.sh)"
problems=()
share=$TESTDIR/share
mkdir -p "$share/d"
for i in $(seq 0 99); do echo "file $i" >"$share/d/f$i"; done

cat >"$TESTDIR/guest.sh" <<'EOF'
cat >/tmp/work.sh <<'W'
i=0
while [ $i -lt 400 ]; do
  stat /mnt/d/f$((i % 100)) >/dev/null || echo "WORK-ERROR stat $i"
  [ "$(cat /mnt/d/f$((i % 100)))" = "file $((i % 100))" ] || echo "WORK-ERROR read $i"
  i=$((i + 1))
done
W
echo "CPUS $(grep -c ^processor /proc/cpuinfo)"
t0=$(cut -d' ' -f1 /proc/uptime)
taskset 1 sh /tmp/work.sh &
taskset 2 sh /tmp/work.sh &
wait
t1=$(cut -d' ' -f1 /proc/uptime)
echo "PARALLEL-MS $(echo "$t0 $t1" | awk '{ printf "%d", ($2 - $1) * 1000 }')"
EOF

for queues in 1 2; do
  SOCK=$TESTDIR/q$queues.sock BACKEND_LOG=$TESTDIR/vufsd-q$queues.log
  start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" --sandbox=none --seccomp=none --cache=never \
    --queues=$queues || { cat "$BACKEND_LOG"; fail "vufsd did not start"; }
  c=$TESTDIR/console-q$queues.txt grc=0
  "$GUEST" --qemu 11.1 --kernel sid --smp 2 --queues $queues "$SOCK" "$TESTDIR/guest.sh" >"$c" 2>"$TESTDIR/guest-q$queues.err" || grc=$?
  [ $grc -eq 0 ] || { tail -n 30 "$c"; tail -n 5 "$TESTDIR/guest-q$queues.err"; problems+=("$queues queues: guest.sh exit $grc"); }
  grep -q 'WORK-ERROR' "$c" && problems+=("$queues queues: $(grep -m1 WORK-ERROR "$c")")
  if wait_backend_exit 20; then
    [ "$BACKEND_STATUS" -eq 0 ] || problems+=("$queues queues: vufsd $(status_text "$BACKEND_STATUS")")
  else
    problems+=("$queues queues: vufsd still running after the poweroff"); stop_backend 5 || true
  fi
  sanitizer_report "$BACKEND_LOG" >/dev/null && { cat "$BACKEND_LOG"; problems+=("$queues queues: sanitizer report"); }
  counts=$(grep -o 'queue [0-9]*: [0-9]* requests' "$BACKEND_LOG" | tr '\n' ',' )
  echo "== $queues request queue(s): $(grep -m1 '^CPUS' "$c"), parallel phase $(sed -n 's/^PARALLEL-MS //p' "$c") ms; vufsd: ${counts%,}"
  if [ $queues = 2 ]; then
    for q in 1 2; do
      n=$(sed -n "s/.*queue $q: \([0-9]*\) requests.*/\1/p" "$BACKEND_LOG" | head -1)
      [ -n "$n" ] && [ "$n" -ge 200 ] || problems+=("request queue $q served ${n:-no} requests (want >= 200): requests not spread")
    done
  fi
done
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "guest_multiqueue: ok"
