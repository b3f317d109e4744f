#!/usr/bin/env bash
# Where a backend's time goes per request: each operation of vufs-microbench runs alone against a fresh backend
# that is wrapped in a profiler (children and threads included), and the profiler's totals are divided by the
# operations the microbenchmark completed.
#
#   bench/profile.sh [--backend=vufsd|qemu|qemu-pool64|rust] [--ops=lookup,getattr,...] [--qd=N] [--ms=N]
#                    [--tool=stat|strace|record|callgrind] [--out=DIR]
#
#   stat       perf stat (software events): CPU µs per operation (user, system), context switches per operation
#   strace     strace -c -f: system calls per operation, the most frequent ones
#   record     perf record -g (cpu-clock sampling): the top symbols, kernel and user, for each operation
#   callgrind  valgrind --tool=callgrind: user-space instructions per operation and the top functions
#              (vufsd only, run with --sandbox=none --seccomp=none: valgrind cannot run under the filter)
#
# "create" is a CREATE+RELEASE pair plus the UNLINK of the same file (the microbenchmark pairs them); the
# microbenchmark's setup (INIT, a few LOOKUPs, OPEN) and FORGETs are included and negligible. The shared directory
# is a tmpfs mounted for the run. Output: a markdown table on stdout; raw profiler output stays in --out if given.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VUFS_BUILD:-$ROOT/build}
BACKEND=vufsd OPS=lookup,getattr,create,readdirplus,read4k,write4k,read1m,write1m QD=1 MS=1000 TOOL=stat KEEP=''
for a in "$@"; do
  case $a in
    --backend=*) BACKEND=${a#*=} ;; --ops=*) OPS=${a#*=} ;; --qd=*) QD=${a#*=} ;; --ms=*) MS=${a#*=} ;;
    --tool=*) TOOL=${a#*=} ;; --out=*) KEEP=${a#*=} ;;
    -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
QEMU_VIRTIOFSD=${QEMU_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
RUST_VIRTIOFSD=${RUST_VIRTIOFSD:-$ROOT/scripts/peers/virtiofsd-rust.sh}
[ "$(id -u)" = 0 ] || { echo "profile.sh: needs root" >&2; exit 1; }
if [ -z "${VUFS_BENCH_NS:-}" ]; then   # our tmpfs in a mount namespace of our own (see run.sh)
  export VUFS_BENCH_NS=1
  exec unshare --mount --propagation private -- "$0" "$@"
fi

WORK=$(mktemp -d /var/tmp/vufs-profile.XXXXXX)
SHARE=$WORK/share
mkdir -p "$SHARE"
mount -t tmpfs -o size=2g vufs-profile "$SHARE" || exit 1
BPID=''
# shellcheck disable=SC2317
cleanup() { [ -z "$BPID" ] || { kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; }
            umount "$SHARE" 2>/dev/null; [ -n "$KEEP" ] && { mkdir -p "$KEEP"; cp -r "$WORK"/*.txt "$KEEP"/ 2>/dev/null; }
            rm -rf "$WORK"; }
trap cleanup EXIT

backend_cmd() {
  local sock=$1
  case $BACKEND in
    vufsd) if [ "$TOOL" = callgrind ]; then
             echo "$BUILD/vufsd --socket-path=$sock --shared-dir=$SHARE --sandbox=none --seccomp=none"
           else echo "$BUILD/vufsd --socket-path=$sock --shared-dir=$SHARE"; fi ;;
    qemu) echo "$QEMU_VIRTIOFSD --socket-path=$sock -o source=$SHARE -o cache=auto --thread-pool-size=0" ;;
    qemu-pool64) echo "$QEMU_VIRTIOFSD --socket-path=$sock -o source=$SHARE -o cache=auto" ;;
    rust) echo "$RUST_VIRTIOFSD --socket-path=$sock --shared-dir=$SHARE --cache=auto" ;;
    *) echo "profile.sh: unknown backend $BACKEND" >&2; exit 2 ;;
  esac
}

# Runs one operation against a profiled backend; leaves the profiler output in $WORK/$op.txt and the number of
# operations completed in $N. Runs in the main shell, so that the trap can always stop the backend.
N=0
profile_op() {
  local op=$1 sock=$WORK/$1.sock out=$WORK/$1.txt i   # a socket per op: a backend still exiting may unlink its own
  local -a cmd wrap
  read -r -a cmd <<<"$(backend_cmd "$sock")"
  case $TOOL in
    stat)      wrap=(perf stat -e "task-clock,context-switches,cpu-migrations,page-faults" -o "$out" --) ;;
    strace)    wrap=(strace -c -f -o "$out") ;;
    record)    wrap=(perf record -q -F 4999 -g -o "$WORK/$op.data" --) ;;
    callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$WORK/$op.cg" --trace-children=yes) ;;
  esac
  rm -f "$sock"
  "${wrap[@]}" "${cmd[@]}" >"$WORK/$op.backend.log" 2>&1 &
  BPID=$!
  for ((i = 0; i < 600; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
  N=$("$BUILD/vufs-microbench" --socket="$sock" --dir="$SHARE" --label="$BACKEND" --ops="$op" --qd="$QD" \
          --reps=1 --ms="$MS" --warmup-ms=0 2>>"$WORK/micro.err" | awk '/^RESULT/ { for (i = 2; i <= NF; i++)
          if ($i ~ /^ops=/) { sub("ops=", "", $i); s += $i } } END { print s + 0 }')
  for ((i = 0; i < 300; i++)); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
  kill -INT "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; BPID=''
}

IFS=, read -r -a op_list <<<"$OPS"
case $TOOL in
  stat)
    echo "| op (qd $QD, $BACKEND) | ops | CPU µs/op | user µs/op | sys µs/op | context switches/op | page faults/op |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for op in "${op_list[@]}"; do
      profile_op "$op"; n=$N f=$WORK/$op.txt
      awk -v op="$op" -v n="$n" '
        /task-clock/ { gsub(",", "", $1); tc = $1 }       # msec
        /context-switches/ { gsub(",", "", $1); cs = $1 }
        /page-faults/ { gsub(",", "", $1); pf = $1 }
        /seconds user/ { us = $1 } /seconds sys/ { sy = $1 }
        END { if (n == 0) { print "| " op " | 0 | — | — | — | — | — |"; exit }
              printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.3f |\n", op, n, tc * 1000 / n, us * 1e6 / n, sy * 1e6 / n,
                     cs / n, pf / n }' "$f"
    done ;;
  strace)
    echo "| op (qd $QD, $BACKEND) | ops | syscalls/op | top system calls per op |"
    echo "|---|---:|---:|---|"
    for op in "${op_list[@]}"; do
      profile_op "$op"; n=$N f=$WORK/$op.txt
      awk -v op="$op" -v n="$n" '
        $NF == "total" { tot = $(NF - 2) + 0 }
        $1 ~ /^[0-9.]+$/ && $NF != "total" { calls[$NF] = $4 }
        END { if (n == 0) { print "| " op " | 0 | — | — |"; exit }
              m = 0; for (s in calls) { k[++m] = s }
              for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (calls[k[j]] > calls[k[i]]) { t = k[i]; k[i] = k[j]; k[j] = t }
              line = ""; for (i = 1; i <= m && i <= 8; i++) if (calls[k[i]] / n >= 0.05) line = line sprintf("%s %.2f, ", k[i], calls[k[i]] / n)
              sub(", $", "", line); printf "| %s | %d | %.2f | %s |\n", op, n, tot / n, line }' "$f"
    done ;;
  record)
    for op in "${op_list[@]}"; do
      profile_op "$op"; n=$N
      echo "### $op (qd $QD, $BACKEND): $n operations"
      echo '```'
      perf report -i "$WORK/$op.data" --stdio --no-children -g none --sort sym 2>/dev/null | grep -E '^ +[0-9]' | head -25 |
        tee "$WORK/$op.txt"
      echo '```'
    done ;;
  callgrind)
    echo "| op (qd $QD, $BACKEND, user space) | ops | instructions/op | top functions (instructions/op) |"
    echo "|---|---:|---:|---|"
    for op in "${op_list[@]}"; do
      profile_op "$op"; n=$N
      f=$(ls -S "$WORK/$op".cg* 2>/dev/null | head -1)
      [ -n "$f" ] || { echo "| $op | $n | — | no callgrind output |"; continue; }
      callgrind_annotate --inclusive=no "$f" 2>/dev/null >"$WORK/$op.txt"
      awk -v op="$op" -v n="$n" '
        /PROGRAM TOTALS/ { gsub(",", "", $1); tot = $1 }
        /^ *[0-9,]+ +\( *[0-9.]+%\) +[^ ]+:[^ ]+/ && !/PROGRAM TOTALS/ && c < 8 {
          v = $1; gsub(",", "", v); fn = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", fn); sub(/ \[.*$/, "", fn)
          sub(/^.*:/, "", fn); sub(/@@.*$/, "", fn); top = top sprintf("%s %.0f, ", fn, v / n); c++ }
        END { if (n == 0) { print "| " op " | 0 | — | — |"; exit }
              sub(", $", "", top); printf "| %s | %d | %.0f | %s |\n", op, n, tot / n, top }' "$WORK/$op.txt"
    done ;;
  *) echo "profile.sh: unknown tool $TOOL" >&2; exit 2 ;;
esac
