#!/usr/bin/env bash
# vufsd against its peers and the physical limit, measured in one run.
#
#   bench/run.sh [--quick] [--sections=abcd] [--out=FILE]
#
# (a) vufs-microbench: raw FUSE requests on the request queue of vufsd (defaults, and --poll-us=0), QEMU's C
#     virtiofsd (--thread-pool-size=0 and its default pool of 64), the Rust virtiofsd, and the same system calls
#     made natively (one thread); queue depths 1, 16, 128, the driver sleeping while it waits. Then queue depth 1
#     with a driver that polls 200 µs before it sleeps, as KVM halt-polls a waiting vCPU. Then vufsd alone with
#     several request queues (--queues=4, with and without polling): 1, 2 and 4 queues driven at once (~45 s).
# (b) through the host mount: vufs-mount on each backend in each cache mode, and the native directory: fio
#     (sequential and random read and write, 4 KiB and 1 MiB, psync and libaio), create/stat/`ls -l`/unlink of
#     many files, untar/find/rm -rf of a real source tree (the files of Debian's cmake-data package).
# (d) DAX through the host mount: fio 4 KiB random reads (psync) of a 64 MiB file through vufs-mount on
#     vufsd --dax-window=64M, with --dax=never and --dax=always, in cache modes never and auto.
# (c) in a real guest (tests/vm/guest.sh, QEMU TCG): create/stat/`ls -l`/unlink, untar/find/rm -rf of part of the
#     tree, 64 MiB write and read, against vufsd, both virtiofsd and QEMU's virtio-9p, comparable cache modes.
#
# Every figure is the median of REPS runs (rounds interleave the targets, so load that comes and goes hits them
# alike); every ratio is between figures of this run. Results go to stdout and to build/bench-results.md (--out);
# progress and notes to stderr. The last line is
#   SUMMARY meta_vs_virtiofsd=X data_vs_virtiofsd=Y meta_vs_native=Z
# geometric means over the microbenchmark's rows of vufsd's ops/s divided by QEMU's C virtiofsd's (the better of its
# two configurations on each row), for metadata rows and for data rows, and of vufsd's ops/s divided by native's
# over the metadata rows at queue depth 1 (native runs one request at a time).
#
# The shared directory is a tmpfs that this script mounts (BENCH_SHARE=DIR to use another file system: on this
# machine's journal-less ext4, a create after heavy unlinking costs ~0.7 ms in recently_deleted(), which swamps
# every backend alike). The Rust virtiofsd is run through scripts/peers/virtiofsd-rust.sh, which fetches Debian sid's
# on its first run (RUST_VIRTIOFSD=PATH for another); when it cannot be had, its columns are skipped. Environment overrides: REPS, MOUNT_REPS, GUEST_REPS, MICRO_MS, FIO_RUNTIME_MS,
# FIO_MIB, NFILES, GUEST_FILES, GUEST_MIB, GUEST_TREE_MAX, QEMU_VIRTIOFSD, PEER_QEMU, BENCH_KEEP=DIR (keep the raw
# figures and logs there).
# Needs root (mounts, drop_caches in the guest), and the packages of `scripts/deps.sh bench`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VUFS_BUILD:-$ROOT/build}
OUT=$BUILD/bench-results.md
QUICK=0 SECTIONS=abcd
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    --sections=*) SECTIONS=${a#*=} ;;
    --out=*) OUT=${a#*=} ;;
    -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  : "${REPS:=2}" "${MOUNT_REPS:=1}" "${GUEST_REPS:=1}" "${MICRO_MS:=150}" "${MICRO_WARMUP_MS:=30}" "${MICRO_MIB:=16}"
  : "${FIO_RUNTIME_MS:=150}" "${FIO_MIB:=16}" "${NFILES:=1000}" "${GUEST_FILES:=300}" "${GUEST_MIB:=16}"
  : "${GUEST_TREE_MAX:=300}"
else
  : "${REPS:=5}" "${MOUNT_REPS:=5}" "${GUEST_REPS:=3}" "${MICRO_MS:=300}" "${MICRO_WARMUP_MS:=50}" "${MICRO_MIB:=64}"
  : "${FIO_RUNTIME_MS:=250}" "${FIO_MIB:=64}" "${NFILES:=10000}" "${GUEST_FILES:=1000}" "${GUEST_MIB:=64}"
  : "${GUEST_TREE_MAX:=1200}"
fi
QEMU_VIRTIOFSD=${QEMU_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
# which configuration of QEMU's C virtiofsd sections (b) and (c) run: qemu (--thread-pool-size=0) or qemu-pool64
PEER_QEMU=${PEER_QEMU:-qemu}
qemu_desc() { [ "$PEER_QEMU" = qemu ] && echo "QEMU's C virtiofsd with --thread-pool-size=0" ||
                echo "QEMU's C virtiofsd in its default configuration (a pool of 64 threads)"; }
RUST_VIRTIOFSD=${RUST_VIRTIOFSD:-$ROOT/scripts/peers/virtiofsd-rust.sh}
MICRO=$BUILD/vufs-microbench META=$BUILD/vufs-metabench

note() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (mounts, /dev/fuse)"
# Our mounts (the tmpfs, the FUSE mounts) live in a mount namespace of our own. Otherwise a process elsewhere that
# unshares its mount namespace while one of our FUSE mounts exists keeps a copy of it: our umount then leaves the
# FUSE connection alive and vufs-mount waiting for ever (seen here with a fuzzer that unshares).
if [ -z "${VUFS_BENCH_NS:-}" ]; then
  export VUFS_BENCH_NS=1
  exec unshare --mount --propagation private -- "$0" "$@"
fi
for f in "$BUILD/vufsd" "$BUILD/vufs-mount" "$MICRO" "$META"; do [ -x "$f" ] || die "no $f (make all)"; done
HAVE_QEMU=0 HAVE_RUST=0
[ -x "$QEMU_VIRTIOFSD" ] && HAVE_QEMU=1 || note "no QEMU virtiofsd at $QEMU_VIRTIOFSD: its columns are skipped"
[ -x "$RUST_VIRTIOFSD" ] && "$RUST_VIRTIOFSD" --version >/dev/null && HAVE_RUST=1 ||
  note "no Rust virtiofsd through $RUST_VIRTIOFSD: its columns are skipped"

WORK=$(mktemp -d /var/tmp/vufs-bench.XXXXXX)
SHARE=${BENCH_SHARE:-$WORK/share} MNT=$WORK/mnt LOGS=$WORK/logs
mkdir -p "$SHARE" "$MNT" "$LOGS"
OWN_TMPFS=0
if [ -z "${BENCH_SHARE:-}" ]; then
  mount -t tmpfs -o size=4g,mode=0755 vufs-bench "$SHARE" || die "cannot mount a tmpfs on $SHARE"
  OWN_TMPFS=1
fi
BPID='' MPID=''
cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
  [ -z "$MPID" ] || { kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; }
  [ -z "$BPID" ] || { kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; }
  [ "$OWN_TMPFS" = 0 ] || umount "$SHARE" 2>/dev/null || umount -l "$SHARE" 2>/dev/null
  if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP" && cp -r "$WORK"/*.raw "$WORK"/*.out "$WORK"/micro.* "$LOGS" \
                                      "$BENCH_KEEP"/ 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

foreign_qemu() { pgrep -c -f '^qemu-system' 2>/dev/null || true; }
LOAD_NOTES=() LOADAVG=()
# Notes other people's guests, and the load average (this run adds ~1 while it measures) at each boundary.
load_check() {
  local n; n=$(foreign_qemu)
  [ "$n" = 0 ] || LOAD_NOTES+=("$1: $n QEMU process(es) of others running")
  LOADAVG+=("$1 $(cut -d' ' -f1 /proc/loadavg)")
}

# ---- backends ------------------------------------------------------------------------------------------------
# start_backend KIND CACHE SOCK [QUEUES]: vufsd | vufsd-nopoll | qemu (no pool) | qemu-pool64 | rust,
# cache never|auto|always; QUEUES request queues (vufsd only)
start_backend() {
  local kind=$1 cache=$2 sock=$3 log=$LOGS/$1-$2.log i cmd
  rm -f "$sock"
  case $kind in
    vufsd)        cmd=("$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --cache="$cache") ;;
    vufsd-dax)    cmd=("$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --cache="$cache" --dax-window=64M) ;;
    vufsd-nopoll) cmd=("$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --cache="$cache" --poll-us=0) ;;
    qemu)         cmd=("$QEMU_VIRTIOFSD" --socket-path="$sock" -o source="$SHARE" -o cache="${cache/never/none}"
                       --thread-pool-size=0) ;;
    qemu-pool64)  cmd=("$QEMU_VIRTIOFSD" --socket-path="$sock" -o source="$SHARE" -o cache="${cache/never/none}") ;;
    rust)         cmd=("$RUST_VIRTIOFSD" --socket-path="$sock" --shared-dir="$SHARE" --cache="$cache") ;;
    *)            die "unknown backend $kind" ;;
  esac
  [ -z "${4:-}" ] || cmd+=(--queues="$4")
  "${cmd[@]}" >>"$log" 2>&1 &
  BPID=$!
  for ((i = 0; i < 600; i++)); do
    [ -S "$sock" ] && return 0
    kill -0 "$BPID" 2>/dev/null || break
    sleep 0.1
  done
  note "$kind ($cache) did not create $sock; its log:"; tail -5 "$log" >&2
  stop_backend; return 1
}
# The backends exit when their frontend disconnects; give them a moment, then make sure.
stop_backend() {
  local i
  [ -n "$BPID" ] || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
  kill "$BPID" 2>/dev/null
  wait "$BPID" 2>/dev/null
  BPID=''
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# human: 1234567 -> 1.23M
human() { awk -v x="$1" 'BEGIN { if (x=="") {print "—"; exit} a = x < 0 ? -x : x
  if (a >= 1e6) printf "%.2fM", x/1e6; else if (a >= 1e4) printf "%.1fk", x/1e3; else if (a >= 100) printf "%.0f", x;
  else if (a >= 1) printf "%.2f", x; else printf "%.3g", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a=="" || b=="" || b+0==0) print "—"; else printf "%.2f", a/b }'; }

# ---- the machine ---------------------------------------------------------------------------------------------
header() {
  local cpu qemu_v rust_v=none deb
  cpu=$(awk -F: '/^model name/ {sub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
  deb=$(cat /etc/debian_version 2>/dev/null || echo ?)
  qemu_v=$(qemu-system-x86_64 --version 2>/dev/null | head -1 | sed 's/QEMU emulator version //')
  [ "$HAVE_RUST" = 0 ] || rust_v=$("$RUST_VIRTIOFSD" --version 2>/dev/null | head -1)
  echo "# vufs benchmarks ($([ "$QUICK" = 1 ] && echo "quick run" || echo "full run"))"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r), Debian $deb"
  echo "- vufs $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo ?), QEMU $qemu_v (C virtiofsd and the guest's VMM), Rust virtiofsd: $rust_v, $(fio --version 2>/dev/null)"
  echo "- shared directory: $(findmnt -n -o FSTYPE --target "$SHARE") ($([ "$OWN_TMPFS" = 1 ] && echo "a tmpfs of this run" || echo "$SHARE"))"
  echo "- repetitions: microbenchmark $REPS rounds × ${MICRO_MS} ms per figure; host mount $MOUNT_REPS; guest $GUEST_REPS (one boot per backend)"
}

# ---- (a) microbenchmark --------------------------------------------------------------------------------------
MICRO_OPS=(lookup getattr create unlink readdirplus read4k read1m write4k write1m)
META_OPS=" lookup getattr create unlink readdirplus "
micro_targets() {
  local t=(vufsd vufsd-nopoll)
  [ "$HAVE_QEMU" = 0 ] || t+=(qemu qemu-pool64)
  [ "$HAVE_RUST" = 0 ] || t+=(rust)
  t+=(native)
  echo "${t[@]}"
}

hp_targets() {
  local t=(vufsd)
  [ "$HAVE_QEMU" = 0 ] || t+=(qemu)
  [ "$HAVE_RUST" = 0 ] || t+=(rust)
  echo "${t[@]}"
}

section_a() {
  local raw=$WORK/micro.raw round t sock=$WORK/micro.sock common
  common=(--dir="$SHARE" --reps=1 --ms="$MICRO_MS" --warmup-ms="$MICRO_WARMUP_MS" --file-mib="$MICRO_MIB")
  : >"$raw"
  for ((round = 1; round <= REPS; round++)); do
    load_check "microbenchmark round $round"
    for t in $(micro_targets); do
      note "(a) round $round/$REPS: $t"
      if [ "$t" = native ]; then
        timeout 900 "$MICRO" --native --label=native --qd=1 "${common[@]}" >>"$raw" 2>>"$LOGS/micro.err" ||
          note "microbenchmark failed on native (see below)"
        continue
      fi
      start_backend "$t" auto "$sock" || continue
      timeout 900 "$MICRO" --socket="$sock" --label="$t" "${common[@]}" >>"$raw" 2>>"$LOGS/micro.err" ||
        { note "microbenchmark failed on $t:"; tail -3 "$LOGS/micro.err" >&2; }
      stop_backend
    done
    for t in $(hp_targets); do
      note "(a) round $round/$REPS: $t, driver halt-polling"
      start_backend "$t" auto "$sock" || continue
      timeout 900 "$MICRO" --socket="$sock" --label="$t+hp" --qd=1 --poll-us=200 "${common[@]}" >>"$raw" \
        2>>"$LOGS/micro.err" || { note "microbenchmark failed on $t (halt-polling):"; tail -3 "$LOGS/micro.err" >&2; }
      stop_backend
    done
  done
  # target op qd -> medians of ops/s, p50, p99
  awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
         print f["target"], f["op"], f["qd"], f["ops_s"], f["p50_us"], f["p99_us"] }' "$raw" >"$WORK/micro.rows"
  : >"$WORK/micro.agg"
  local key
  while read -r key; do
    set -- $key
    local o p5 p9
    o=$(awk -v t="$1" -v op="$2" -v q="$3" '$1==t && $2==op && $3==q {print $4}' "$WORK/micro.rows" | median)
    p5=$(awk -v t="$1" -v op="$2" -v q="$3" '$1==t && $2==op && $3==q {print $5}' "$WORK/micro.rows" | median)
    p9=$(awk -v t="$1" -v op="$2" -v q="$3" '$1==t && $2==op && $3==q {print $6}' "$WORK/micro.rows" | median)
    echo "$1 $2 $3 $o $p5 $p9" >>"$WORK/micro.agg"
  done < <(awk '{print $1, $2, $3}' "$WORK/micro.rows" | sort -u)
}

# (a3) several request queues: one vufsd with 4 request queues per configuration, and in one connection each
# figure with 1, then 2, then 4 queues driven at once, a thread and --qd slots each (vufs-microbench --queues).
MQ_OPS=(getattr lookup read4k write4k)
section_a3() {
  local t sock=$WORK/mq.sock reps=$((REPS < 3 ? REPS : 3)) ops
  ops=$(IFS=,; echo "${MQ_OPS[*]}")
  : >"$WORK/mq.raw"
  for t in vufsd vufsd-nopoll; do
    note "(a3) several request queues: $t"
    start_backend "$t" auto "$sock" 4 || continue
    timeout 300 "$MICRO" --socket="$sock" --label="$t" --dir="$SHARE" --ops="$ops" --qd=1,16 --queues=1,2,4 \
      --reps="$reps" --ms="$MICRO_MS" --warmup-ms="$MICRO_WARMUP_MS" --file-mib="$MICRO_MIB" >>"$WORK/mq.raw" \
      2>>"$LOGS/micro.err" || { note "microbenchmark failed on $t with several queues:"; tail -3 "$LOGS/micro.err" >&2; }
    stop_backend
  done
}

micro_get() { awk -v t="$1" -v op="$2" -v q="$3" -v c="$4" '$1==t && $2==op && $3==q {print $c; exit}' "$WORK/micro.agg"; }
micro_cell() {
  local o p5 p9
  o=$(micro_get "$1" "$2" "$3" 4)
  [ -n "$o" ] || { echo "—"; return; }
  p5=$(micro_get "$1" "$2" "$3" 5); p9=$(micro_get "$1" "$2" "$3" 6)
  printf '%s (%s/%s)' "$(human "$o")" "$(human "$p5")" "$(human "$p9")"
}
qemu_best() {
  local a b
  a=$(micro_get qemu "$1" "$2" 4); b=$(micro_get qemu-pool64 "$1" "$2" 4)
  awk -v a="$a" -v b="$b" 'BEGIN { if (a=="" && b=="") print ""; else print (a+0 > b+0 ? a : b) }'
}

table_a() {
  local op qd t targets
  targets=$(micro_targets)
  echo
  echo "## (a) Microbenchmark: raw FUSE requests on the request queue (vufs-microbench)"
  echo
  echo "ops/s (p50/p99 latency in µs), median of $REPS rounds of ${MICRO_MS} ms; one driver thread that sleeps on the"
  echo "call eventfd whenever the ring has nothing for it; 4 KiB READDIRPLUS buffers (as the Linux client); READDIRPLUS ops = full listings of a"
  echo "1,000-entry directory (OPENDIR, READDIRPLUS until empty, RELEASEDIR); CREATE = CREATE+RELEASE; every backend"
  echo "with cache=auto. native = the same system calls on the shared directory, one thread (queue depth 1 only; its"
  echo "figure is the reference for every depth). vufsd = its defaults (queue polled up to 50 µs, adaptively),"
  echo "vufsd-nopoll = --poll-us=0; qemu = QEMU's C virtiofsd with --thread-pool-size=0, qemu-pool64 = its default pool;"
  echo "vufsd/qemu divides by the better of the two. Ratios > 1: vufsd is faster. CREATE stops at 12,000 files per"
  echo "round (each holds an fd in the backend until UNLINK)."
  echo
  local hdr="| op | qd |" sep="|---|---:|"
  for t in $targets; do hdr+=" $t |"; sep+="---:|"; done
  hdr+=" vufsd/qemu |"; sep+="---:|"
  [ "$HAVE_RUST" = 0 ] || { hdr+=" vufsd/rust |"; sep+="---:|"; }
  hdr+=" vufsd/native |"; sep+="---:|"
  echo "$hdr"; echo "$sep"
  for op in "${MICRO_OPS[@]}"; do
    for qd in 1 16 128; do
      local row="| $op | $qd |" v
      for t in $targets; do
        if [ "$t" = native ]; then row+=" $([ "$qd" = 1 ] && micro_cell native "$op" 1 || echo "(qd 1)") |"
        else row+=" $(micro_cell "$t" "$op" "$qd") |"; fi
      done
      v=$(micro_get vufsd "$op" "$qd" 4)
      row+=" $(ratio "$v" "$(qemu_best "$op" "$qd")") |"
      [ "$HAVE_RUST" = 0 ] || row+=" $(ratio "$v" "$(micro_get rust "$op" "$qd" 4)") |"
      row+=" $(ratio "$v" "$(micro_get native "$op" 1 4)") |"
      echo "$row"
    done
  done
}

# Queue depth 1 with the driver halt-polling (as a KVM vCPU): what a wake-up-free round trip costs.
table_a2() {
  local op t row hdr="| op |" sep="|---|"
  for t in $(hp_targets); do hdr+=" $t |"; sep+="---:|"; done
  [ "$HAVE_QEMU" = 0 ] || { hdr+=" vufsd/qemu |"; sep+="---:|"; }
  [ "$HAVE_RUST" = 0 ] || { hdr+=" vufsd/rust |"; sep+="---:|"; }
  hdr+=" vufsd/native |"; sep+="---:|"
  echo
  echo "### (a2) Queue depth 1, the driver polling 200 µs before it sleeps (as KVM halt-polls a waiting vCPU)"
  echo
  echo "ops/s (p50/p99 µs), median of $REPS rounds; the same requests as (a) at depth 1. Here a round trip need not"
  echo "wake the driver, so what is left is the backend's own latency, including its wake-up if it sleeps."
  echo
  echo "$hdr"; echo "$sep"
  for op in "${MICRO_OPS[@]}"; do
    row="| $op |"
    for t in $(hp_targets); do row+=" $(micro_cell "$t+hp" "$op" 1) |"; done
    local v; v=$(micro_get "vufsd+hp" "$op" 1 4)
    [ "$HAVE_QEMU" = 0 ] || row+=" $(ratio "$v" "$(micro_get "qemu+hp" "$op" 1 4)") |"
    [ "$HAVE_RUST" = 0 ] || row+=" $(ratio "$v" "$(micro_get "rust+hp" "$op" 1 4)") |"
    row+=" $(ratio "$v" "$(micro_get native "$op" 1 4)") |"
    echo "$row"
  done
}

table_a3() {
  local t op qd n one four row hdr="| op | qd |" sep="|---|---:|" reps=$((REPS < 3 ? REPS : 3))
  mq_get() { awk -v t="$1" -v op="$2" -v q="$3" -v n="$4" -v c="$5" '/^RESULT/ { delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (f["target"] == t && f["op"] == op && f["qd"] == q && f["queues"] == n) { print f[c]; exit } }' "$WORK/mq.raw"; }
  for t in vufsd vufsd-nopoll; do hdr+=" $t 1 q | 2 q | 4 q | 4 q / 1 q |"; sep+="---:|---:|---:|---:|"; done
  echo
  echo "### (a3) Several request queues (vufsd --queues=4; 1, 2, 4 of them driven at once)"
  echo
  echo "Total ops/s over all queues (p50/p99 µs over all their requests), median of $reps × ${MICRO_MS} ms in one connection;"
  echo "queue depth per queue; each queue driven by its own thread (sleeping while it waits), all on the same file"
  echo "and directory. On $(nproc) cores, 4 queues means 4 queue threads and 4 driver threads on them."
  echo
  echo "$hdr"; echo "$sep"
  for op in "${MQ_OPS[@]}"; do
    for qd in 1 16; do
      row="| $op | $qd |"
      for t in vufsd vufsd-nopoll; do
        for n in 1 2 4; do
          local o; o=$(mq_get "$t" "$op" "$qd" "$n" ops_s)
          if [ -z "$o" ]; then row+=" — |"; continue; fi
          row+=" $(human "$o") ($(human "$(mq_get "$t" "$op" "$qd" "$n" p50_us)")/$(human "$(mq_get "$t" "$op" "$qd" "$n" p99_us)")) |"
        done
        row+=" $(ratio "$(mq_get "$t" "$op" "$qd" 4 ops_s)" "$(mq_get "$t" "$op" "$qd" 1 ops_s)") |"
      done
      echo "$row"
    done
  done
}

summary() {
  local op qd v q n meta_q=() data_q=() meta_n=()
  for op in "${MICRO_OPS[@]}"; do
    for qd in 1 16 128; do
      v=$(micro_get vufsd "$op" "$qd" 4); q=$(qemu_best "$op" "$qd"); n=$(micro_get native "$op" 1 4)
      if [[ $META_OPS == *" $op "* ]]; then
        meta_q+=("$(ratio "$v" "$q")")
        [ "$qd" != 1 ] || meta_n+=("$(ratio "$v" "$n")")
      else
        data_q+=("$(ratio "$v" "$q")")
      fi
    done
  done
  geo() { printf '%s\n' "$@" | awk '$1 != "—" && $1 > 0 { s += log($1); n++ } END { if (n) printf "%.2f", exp(s/n); else print "n/a" }'; }
  echo "SUMMARY meta_vs_virtiofsd=$(geo "${meta_q[@]}") data_vs_virtiofsd=$(geo "${data_q[@]}") meta_vs_native=$(geo "${meta_n[@]}")"
}

# ---- (b) through the host mount --------------------------------------------------------------------------------
TREE_TAR=$WORK/tree.tar GUEST_TAR=$WORK/guest-tree.tar TREE_DESC=''
prepare_tree() {
  local cache=$BUILD/bench-cache deb
  mkdir -p "$cache"
  deb=$(ls "$cache"/cmake-data_*.deb 2>/dev/null | head -1)
  if [ -z "$deb" ]; then
    (cd "$cache" && apt-get download cmake-data >/dev/null 2>&1) || true
    deb=$(ls "$cache"/cmake-data_*.deb 2>/dev/null | head -1)
  fi
  if [ -n "$deb" ]; then
    dpkg-deb --fsys-tarfile "$deb" >"$TREE_TAR"
    TREE_DESC="the files of Debian's $(basename "$deb" .deb | sed 's/_all$//; s/_/ /')"
  else    # offline: the C headers every build machine has
    { dpkg -L linux-libc-dev libc6-dev | while read -r f; do [ -f "$f" ] && [ ! -L "$f" ] && echo "${f#/}"; done; } |
      tar -C / -cf "$TREE_TAR" -T -
    TREE_DESC="the headers of linux-libc-dev and libc6-dev (cmake-data could not be downloaded)"
  fi
  mkdir -p "$WORK/tree-x"
  tar -C "$WORK/tree-x" -xf "$TREE_TAR"
  TREE_FILES=$(find "$WORK/tree-x" -type f | wc -l) TREE_DIRS=$(find "$WORK/tree-x" -type d | wc -l)
  TREE_BYTES=$(du -sb "$WORK/tree-x" | cut -f1)
  # the guest's part: the largest directory with at most GUEST_TREE_MAX files
  local sub
  sub=$(cd "$WORK/tree-x" && find . -mindepth 1 -type d | while read -r d; do echo "$(find "$d" -type f | wc -l) $d"; done |
        awk -v max="$GUEST_TREE_MAX" '$1 <= max' | sort -rn | head -1 | cut -d' ' -f2-)
  tar -C "$WORK/tree-x" -cf "$GUEST_TAR" "$sub"
  GUEST_TREE_FILES=$(tar -tf "$GUEST_TAR" | grep -vc '/$')
  GUEST_TREE_DESC="$sub of the same"
  rm -rf "$WORK/tree-x"
}

FIO_JOBS=()
for rw in read write randread randwrite; do for bs in 4k 1m; do for eng in psync libaio; do
  FIO_JOBS+=("$rw-$bs-$eng")
done; done; done

fio_jobfile() {
  local dir=$1 j rw bs eng
  echo "[global]"
  echo "filename=$dir/fio.dat"
  echo "size=${FIO_MIB}m"
  echo "runtime=${FIO_RUNTIME_MS}ms"
  echo "time_based=1"
  echo "group_reporting=1"
  for j in "${FIO_JOBS[@]}"; do
    IFS=- read -r rw bs eng <<<"$j"
    echo "[$j]"
    echo "stonewall"
    echo "rw=$rw"
    echo "bs=$bs"
    echo "ioengine=$eng"
    [ "$eng" = psync ] || echo "iodepth=16"
  done
}

# workloads DIR LABEL ROUND: appends "LABEL|ROUND|METRIC|VALUE[|IOPS]" to $WORK/mount.raw
workloads() {
  local dir=$1 label=$2 round=$3 raw=$WORK/mount.raw
  rm -rf "$dir/meta" "$dir/tree"   # left by a failed round
  fio_jobfile "$dir" >"$WORK/fio.job"
  if timeout 600 fio --output-format=terse --terse-version=3 "$WORK/fio.job" >"$WORK/fio.out" 2>>"$LOGS/fio.err"; then
    while IFS=';' read -r -a f; do
      case ${f[2]} in
        *read*)  echo "$label|$round|fio:${f[2]}|${f[6]}|${f[7]}" ;;   # bw KiB/s, IOPS
        *write*) echo "$label|$round|fio:${f[2]}|${f[47]}|${f[48]}" ;;
      esac
    done <"$WORK/fio.out" >>"$raw"
  else
    note "fio failed on $label"; tail -3 "$LOGS/fio.err" >&2
  fi
  step() {   # metric command...
    local m=$1 out; shift
    if out=$(timeout 600 "$@" 2>>"$LOGS/meta.err"); then echo "$label|$round|$m|${out##* }" >>"$raw"
    else note "$m failed on $label"; tail -2 "$LOGS/meta.err" >&2; fi
  }
  step create "$META" create "$dir/meta" "$NFILES"
  # stat and ls -l start once cache=auto's 1 s timeouts have run out, so that they revalidate every entry (else
  # the figure depends on how many entries outlived the create phase, and flips between rounds)
  sleep 1.1
  step stat "$META" stat "$dir/meta" "$NFILES"
  sleep 1.1
  step "ls -l" "$META" time ls -l "$dir/meta"
  step unlink "$META" unlink "$dir/meta" "$NFILES"
  mkdir -p "$dir/tree"
  step untar "$META" time tar -xf "$TREE_TAR" -C "$dir/tree"
  step find "$META" time find "$dir/tree"
  step "rm -rf" "$META" time rm -rf "$dir/tree"
}

mount_targets() {
  local t=(vufsd) c
  [ "$HAVE_QEMU" = 0 ] || t+=(qemu)
  [ "$HAVE_RUST" = 0 ] || t+=(rust)
  for c in never auto always; do printf '%s ' "${t[@]/%/:$c}"; done
  echo native
}

section_b() {
  local round tc t c sock=$WORK/mount.sock i
  : >"$WORK/mount.raw"
  # the fio file, written once on the host side (fio then only reads and overwrites it)
  head -c $((FIO_MIB * 1048576)) /dev/urandom >"$SHARE/fio.dat"
  for ((round = 1; round <= MOUNT_REPS; round++)); do
    load_check "host-mount round $round"
    for tc in $(mount_targets); do
      note "(b) round $round/$MOUNT_REPS: $tc"
      if [ "$tc" = native ]; then workloads "$SHARE" native "$round"; continue; fi
      t=${tc%:*} c=${tc#*:}
      start_backend "$([ "$t" = qemu ] && echo "$PEER_QEMU" || echo "$t")" "$c" "$sock" || continue
      "$BUILD/vufs-mount" --socket="$sock" "$MNT" -f >>"$LOGS/mount-$t-$c.log" 2>&1 &
      MPID=$!
      for ((i = 0; i < 100; i++)); do mountpoint -q "$MNT" && break; sleep 0.1; done
      if mountpoint -q "$MNT"; then
        workloads "$MNT" "$tc" "$round"
        umount "$MNT" || umount -l "$MNT"
      else
        note "vufs-mount did not mount $t ($c)"; tail -3 "$LOGS/mount-$t-$c.log" >&2
        kill "$MPID" 2>/dev/null
      fi
      for ((i = 0; i < 100; i++)); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$MPID" 2>/dev/null; then
        note "vufs-mount on $t ($c) still runs 10 s after the unmount: killed"; kill -KILL "$MPID"
      fi
      wait "$MPID" 2>/dev/null; MPID=''
      stop_backend
    done
  done
  rm -f "$SHARE/fio.dat"
}

# value of a metric for a target: median over rounds; column 4 = KiB/s (fio) or seconds, 5 = IOPS (fio)
mount_get() { awk -F'|' -v t="$1" -v m="$2" -v c="$3" '$1==t && $3==m {print $c}' "$WORK/mount.raw" | median; }

table_b() {
  local m c t v row tgts=(vufsd) ratio_to
  [ "$HAVE_QEMU" = 0 ] || tgts+=(qemu)
  [ "$HAVE_RUST" = 0 ] || tgts+=(rust)
  ratio_to=${tgts[1]:-}
  echo
  echo "## (b) Through the host mount (vufs-mount on each backend, per cache mode; native = the shared directory itself)"
  echo
  echo "fio: ${FIO_MIB} MiB file, ${FIO_RUNTIME_MS} ms per job, MiB/s for 1 MiB blocks and IOPS for 4 KiB, libaio at"
  echo "iodepth 16; buffered I/O (fio's default invalidate: each job starts with the file out of the page cache)."
  echo "Metadata: seconds for $NFILES files (create; stat and GNU \`ls -l\` each 1.1 s after the step before, once"
  echo "cache=auto's timeouts have run out; unlink); untar/find/rm -rf of $TREE_DESC"
  echo "($TREE_FILES files, $TREE_DIRS directories, $((TREE_BYTES / 1048576)) MiB, uncompressed tar read from outside the mount)."
  echo "Median of $MOUNT_REPS rounds. vufs-mount defaults (1 request queue of 128, 4 reader threads, max_write 1 MiB);"
  echo "qemu = $(qemu_desc). ${ratio_to:+vufsd/$ratio_to: vufsd's speed over ${ratio_to}'s in the same mode (> 1: vufsd faster).}"
  echo
  local hdr="| workload |" sep="|---|"
  for c in never auto always; do
    for t in "${tgts[@]}"; do hdr+=" $t $c |"; sep+="---:|"; done
    [ -z "$ratio_to" ] || { hdr+=" vufsd/$ratio_to $c |"; sep+="---:|"; }
  done
  hdr+=" native |"; sep+="---:|"
  echo "$hdr"; echo "$sep"
  local metrics=() j
  for j in "${FIO_JOBS[@]}"; do metrics+=("fio:$j"); done
  metrics+=(create stat "ls -l" unlink untar find "rm -rf")
  for m in "${metrics[@]}"; do
    local col=4 name=$m speed_is_time=1
    case $m in
      fio:*-4k-*) col=5 name="${m#fio:} (IOPS)"; speed_is_time=0 ;;
      fio:*)      name="${m#fio:} (MiB/s)"; speed_is_time=0 ;;
      *)          name="$m (s)" ;;
    esac
    row="| $name |"
    fmt() { if [ -z "$1" ]; then echo "—"; elif [[ $m == fio:*-1m-* ]]; then awk -v x="$1" 'BEGIN {printf "%.0f", x/1024}'; else human "$1"; fi; }
    for c in never auto always; do
      local base='' vv=''
      for t in "${tgts[@]}"; do
        v=$(mount_get "$t:$c" "$m" "$col")
        row+=" $(fmt "$v") |"
        [ "$t" != vufsd ] || vv=$v
        [ "$t" != "$ratio_to" ] || base=$v
      done
      if [ -n "$ratio_to" ]; then
        if [ "$speed_is_time" = 1 ]; then row+=" $(ratio "$base" "$vv") |"; else row+=" $(ratio "$vv" "$base") |"; fi
      fi
    done
    row+=" $(fmt "$(mount_get native "$m" "$col")") |"
    echo "$row"
  done
}

# ---- (d) DAX through the host mount -------------------------------------------------------------------------
section_d() {
  local round c dax sock=$WORK/dax.sock i iops
  : >"$WORK/dax.raw"
  head -c $((FIO_MIB * 1048576)) /dev/urandom >"$SHARE/fio.dat"
  printf '[randread-4k-psync]\nfilename=%s\nsize=%sm\nruntime=%sms\ntime_based=1\nrw=randread\nbs=4k\nioengine=psync\n' \
    "$MNT/fio.dat" "$FIO_MIB" "$FIO_RUNTIME_MS" >"$WORK/dax.job"
  for ((round = 1; round <= MOUNT_REPS; round++)); do
    for c in never auto; do for dax in never always; do
      note "(d) round $round/$MOUNT_REPS: cache=$c dax=$dax"
      start_backend vufsd-dax "$c" "$sock" || continue
      "$BUILD/vufs-mount" --socket="$sock" "$MNT" -f --dax="$dax" >>"$LOGS/mount-dax-$c-$dax.log" 2>&1 &
      MPID=$!
      for ((i = 0; i < 100; i++)); do mountpoint -q "$MNT" && break; sleep 0.1; done
      if mountpoint -q "$MNT"; then
        iops=$(timeout 120 fio --output-format=terse --terse-version=3 "$WORK/dax.job" 2>>"$LOGS/fio.err" | cut -d';' -f8)
        [ -z "$iops" ] || echo "$c|$dax|$iops" >>"$WORK/dax.raw"
        umount "$MNT" || umount -l "$MNT"
      fi
      for ((i = 0; i < 100; i++)); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
      kill "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; MPID=''
      stop_backend
    done; done
  done
  rm -f "$SHARE/fio.dat"
}

table_d() {
  local c dax row="| randread-4k-psync (IOPS) |"
  for c in never auto; do for dax in never always; do
    row+=" $(human "$(awk -F'|' -v c="$c" -v d="$dax" '$1==c && $2==d {print $3}' "$WORK/dax.raw" | median)") |"
  done; done
  echo
  echo "## (d) DAX through the host mount (vufs-mount --dax on vufsd --dax-window=64M)"
  echo
  echo "fio: ${FIO_MIB} MiB file, ${FIO_RUNTIME_MS} ms, 4 KiB random reads, psync; median of $MOUNT_REPS rounds. With"
  echo "--dax=always a READ is one copy out of the window instead of a round trip to vufsd."
  echo
  echo "| workload | cache=never, dax=never | cache=never, dax=always | cache=auto, dax=never | cache=auto, dax=always |"
  echo "|---|---:|---:|---:|---:|"
  echo "$row"
}

# ---- (c) in a real guest ------------------------------------------------------------------------------------
section_c() {
  local gbin=$WORK/guest-bin t sock=$WORK/guest.sock out rc
  mkdir -p "$gbin"
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o "$gbin/vufs-metabench" "$ROOT/bench/vufs-metabench.c" ||
    { note "cannot build a static vufs-metabench: section (c) skipped"; return; }
  cp "$GUEST_TAR" "$gbin/tree.tar"
  cat >"$WORK/guest-script.sh" <<EOF
#!/bin/sh
B=/bin/vufs-metabench
r=1
while [ \$r -le $GUEST_REPS ]; do
  d=/mnt/bench-\$r
  mkdir -p \$d
  \$B create \$d/meta $GUEST_FILES | sed "s/^/GRES \$r /"
  usleep 1100000
  \$B stat \$d/meta $GUEST_FILES | sed "s/^/GRES \$r /"
  usleep 1100000
  \$B time ls -l \$d/meta | sed "s/^time/ls-l/; s/^/GRES \$r /"
  \$B unlink \$d/meta $GUEST_FILES | sed "s/^/GRES \$r /"
  mkdir \$d/tree
  \$B time tar -xf /bin/tree.tar -C \$d/tree | sed "s/^time/untar/; s/^/GRES \$r /"
  \$B drop
  \$B time find \$d/tree | sed "s/^time/find/; s/^/GRES \$r /"
  \$B time rm -rf \$d/tree | sed "s/^time/rm-rf/; s/^/GRES \$r /"
  \$B write \$d/data $GUEST_MIB | sed "s/^/GRES \$r /"
  \$B drop
  \$B read \$d/data | sed "s/^/GRES \$r /"
  rm -rf \$d
  r=\$((r + 1))
done
EOF
  : >"$WORK/guest.raw"
  local targets=(vufsd)
  [ "$HAVE_QEMU" = 0 ] || targets+=(qemu)
  [ "$HAVE_RUST" = 0 ] || targets+=(rust)
  targets+=(9p)
  for t in "${targets[@]}"; do
    load_check "guest $t"
    note "(c) guest on $t"
    out=$WORK/guest-$t.out
    if [ "$t" = 9p ]; then
      MOUNT_OPTS=cache=loose "$ROOT/tests/vm/guest.sh" -t 900 "9p:$SHARE" "$WORK/guest-script.sh" \
        "$gbin/vufs-metabench" "$gbin/tree.tar" >"$out" 2>"$LOGS/guest-$t.err"; rc=$?
    else
      start_backend "$([ "$t" = qemu ] && echo "$PEER_QEMU" || echo "$t")" auto "$sock" || continue
      WATCH_PID=$BPID "$ROOT/tests/vm/guest.sh" -t 900 "$sock" "$WORK/guest-script.sh" \
        "$gbin/vufs-metabench" "$gbin/tree.tar" >"$out" 2>"$LOGS/guest-$t.err"; rc=$?
      stop_backend
    fi
    [ "$rc" = 0 ] || { note "guest run on $t ended with status $rc"; tail -5 "$LOGS/guest-$t.err" >&2; }
    awk -v t="$t" '/^GRES / {print t, $2, $3, $4}' "$out" >>"$WORK/guest.raw"
  done
}

table_c() {
  local m t v row tgts=()
  for t in vufsd qemu rust 9p; do grep -q "^$t " "$WORK/guest.raw" 2>/dev/null && tgts+=("$t"); done
  echo
  echo "## (c) In a real guest (Debian 6.1 kernel, QEMU TCG, 2 vCPUs, 1 GiB; tests/vm/guest.sh)"
  echo
  echo "Seconds, median of $GUEST_REPS runs inside one boot per backend$([ "$GUEST_REPS" -lt 5 ] && echo " (fewer than 5: TCG guests are slow; time-bound)"):"
  echo "$GUEST_FILES files created, stat'ed and listed with busybox \`ls -l\` (each 1.1 s after the step before), unlinked;"
  echo "untar of $GUEST_TREE_DESC"
  echo "($GUEST_TREE_FILES files, from the initramfs), then after dropping the guest's caches \`find\` and \`rm -rf\`;"
  echo "${GUEST_MIB} MiB written in 1 MiB blocks + fsync, caches dropped, read back. virtiofs backends with cache=auto"
  echo "(qemu = $(qemu_desc)); 9p = QEMU's virtio-9p with cache=loose, msize 512 KiB."
  echo "vufsd/X: X's time over vufsd's (> 1: vufsd faster)."
  echo
  local hdr="| step |" sep="|---|"
  for t in "${tgts[@]}"; do hdr+=" $t |"; sep+="---:|"; done
  for t in "${tgts[@]:1}"; do hdr+=" vufsd/$t |"; sep+="---:|"; done
  echo "$hdr"; echo "$sep"
  for m in create stat ls-l unlink untar find rm-rf write read; do
    row="| $m |"
    local vv
    vv=$(awk -v t=vufsd -v m="$m" '$1==t && $3==m {print $4}' "$WORK/guest.raw" | median)
    for t in "${tgts[@]}"; do
      v=$(awk -v t="$t" -v m="$m" '$1==t && $3==m {print $4}' "$WORK/guest.raw" | median)
      row+=" $(human "$v") |"
    done
    for t in "${tgts[@]:1}"; do
      v=$(awk -v t="$t" -v m="$m" '$1==t && $3==m {print $4}' "$WORK/guest.raw" | median)
      row+=" $(ratio "$v" "$vv") |"
    done
    echo "$row"
  done
}

# ---- run -----------------------------------------------------------------------------------------------------
start=$SECONDS
load_check "start"
prepare_tree
[[ $SECTIONS != *a* ]] || { section_a; section_a3; }
[[ $SECTIONS != *b* ]] || section_b
[[ $SECTIONS != *c* ]] || section_c
[[ $SECTIONS != *d* ]] || section_d
load_check "end"
mkdir -p "$(dirname "$OUT")"
{
  header
  echo "- run time: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
  echo "- 1-minute load average at: $(IFS=';'; echo "${LOADAVG[*]}" | sed 's/;/, /g') ($(nproc) cores)"
  if [ ${#LOAD_NOTES[@]} -gt 0 ]; then
    echo "- not quiet: $(IFS=';'; echo "${LOAD_NOTES[*]}" | sed 's/;/; /g')"
  else
    echo "- no QEMU process of others seen at any section boundary"
  fi
  [[ $SECTIONS != *a* ]] || { table_a; table_a2; table_a3; }
  [[ $SECTIONS != *b* ]] || table_b
  [[ $SECTIONS != *c* ]] || table_c
  [[ $SECTIONS != *d* ]] || table_d
  echo
  if [[ $SECTIONS == *a* ]]; then summary; fi
} | tee "$OUT"
