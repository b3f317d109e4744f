#!/usr/bin/env bash
# The worker pool (--thread-pool-size) against none, for vufsd and Rust virtiofsd 1.14, in one run:
# vufs-microbench drives one request queue with raw FUSE requests (GETATTR, 4 KiB and 1 MiB READ) at queue depth 1
# and 16, the share on a tmpfs and on a GlusterFS replica-2 volume on loopback (Debian's glusterfs-server; a
# request there waits for the bricks: GlusterFS's client caches are off and its mount uses direct I/O). Each figure is the median of REPS rounds of MS ms.
#   bench/pool.sh            (root; REPS=3 MS=1000 POOL=4; NO_GLUSTER=1 skips the volume)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VUFS_BUILD:-$ROOT/build}
REPS=${REPS:-3} MS=${MS:-1000} POOL=${POOL:-4}
RUST=$ROOT/scripts/peers/virtiofsd-rust.sh
MICRO=$BUILD/vufs-microbench
note() { echo "pool.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { note "needs root"; exit 1; }
[ -x "$MICRO" ] || { note "no $MICRO (make all)"; exit 1; }
if [ -z "${VUFS_BENCH_NS:-}" ]; then   # our mounts in a namespace of our own (see bench/run.sh)
  export VUFS_BENCH_NS=1
  exec unshare --mount --propagation private -- "$0" "$@"
fi
WORK=$(mktemp -d /var/tmp/vufs-pool.XXXXXX) VOL=vufspool$$ GLUSTERD_PID='' BPID=''
mkdir -p "$WORK/tmpfs" "$WORK/gmnt" "$WORK/b1" "$WORK/b2"
gl() { timeout 60 gluster --mode=script "$@"; }
cleanup() {
  [ -z "$BPID" ] || { kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; }
  mountpoint -q "$WORK/gmnt" && umount -l "$WORK/gmnt"
  if [ -n "$GLUSTERD_PID" ] || gl volume info "$VOL" >/dev/null 2>&1; then
    gl volume stop "$VOL" force >/dev/null 2>&1; gl volume delete "$VOL" >/dev/null 2>&1
    for p in $(pgrep -f -- "--volfile-id[ =]/?(shd/)?$VOL([ .]|\$)"); do kill -9 "$p" 2>/dev/null; done
  fi
  [ -z "$GLUSTERD_PID" ] || { kill "$GLUSTERD_PID"; wait "$GLUSTERD_PID"; } 2>/dev/null
  mountpoint -q "$WORK/tmpfs" && umount "$WORK/tmpfs"
  mountpoint -q "$WORK/gmnt" || rm -rf "$WORK"
}
trap cleanup EXIT

mount -t tmpfs -o size=1g vufs-pool "$WORK/tmpfs"
SHARES=("tmpfs:$WORK/tmpfs")
if [ "${NO_GLUSTER:-0}" != 1 ]; then
  . "$ROOT/tests/lib/need_pkgs.sh"
  need_pkgs glusterfs-server glusterfs-client >/dev/null
  if command -v glusterd >/dev/null; then
    if ! gl volume list >/dev/null 2>&1; then
      glusterd -N >"$WORK/glusterd.out" 2>&1 & GLUSTERD_PID=$!
      for _ in $(seq 60); do gl volume list >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    H=$(hostname)
    # Without GlusterFS's client caches and the kernel's (direct I/O, no attribute cache), every request the
    # backend makes goes to the bricks: the case of a network file system whose requests wait.
    if gl volume create "$VOL" replica 2 "$H:$WORK/b1" "$H:$WORK/b2" force >/dev/null &&
       for o in stat-prefetch io-cache read-ahead quick-read write-behind open-behind; do
         gl volume set "$VOL" performance.$o off >/dev/null || exit 1; done &&
       gl volume start "$VOL" >/dev/null &&
       mount -t glusterfs -o direct-io-mode=enable,attribute-timeout=0,entry-timeout=0 "$H:/$VOL" "$WORK/gmnt"; then
      SHARES+=("gluster:$WORK/gmnt")
    else
      note "no GlusterFS volume: its rows are skipped"
    fi
  else
    note "glusterfs-server not installed: its rows are skipped"
  fi
fi

targets=("vufsd:0" "vufsd:$POOL")
"$RUST" --version >/dev/null 2>&1 && targets+=("rust:0" "rust:$POOL") || note "no Rust virtiofsd: its rows are skipped"
start() {   # kind pool dir sock
  rm -f "$4"
  case $1 in
    vufsd) "$BUILD/vufsd" --socket-path="$4" --shared-dir="$3" --thread-pool-size="$2" >>"$WORK/backend.log" 2>&1 & ;;
    rust)  "$RUST" --socket-path="$4" --shared-dir="$3" --thread-pool-size="$2" >>"$WORK/backend.log" 2>&1 & ;;
  esac
  BPID=$!
  for _ in $(seq 100); do [ -S "$4" ] && return 0; sleep 0.1; done
  note "$1 did not start"; return 1
}
# Rounds interleave the targets, so load that comes and goes hits them alike; round 0 is not recorded: it makes
# the bench tree, and the first reads of a file just written through GlusterFS are served from a cache (seen: 10x).
raw=$WORK/raw
for ((round = 0; round <= REPS; round++)); do
  for s in "${SHARES[@]}"; do
    name=${s%%:*} dir=${s#*:}
    for t in "${targets[@]}"; do
      kind=${t%%:*} pool=${t#*:} out=$raw
      [ $round -gt 0 ] || { out=/dev/null; [ "$t" = "${targets[0]}" ] || continue; }
      note "round $round/$REPS, $name: $kind --thread-pool-size=$pool"
      start "$kind" "$pool" "$dir" "$WORK/sock" || continue
      "$MICRO" --socket="$WORK/sock" --dir="$dir" --label="$name/$kind/$pool" --ops=getattr,read4k,read1m \
        --qd=1,16 --reps=1 --ms="$MS" --file-mib=16 --entries=100 2>>"$WORK/micro.err" | grep '^RESULT' >>"$out" ||
        { note "microbenchmark failed:"; tail -3 "$WORK/micro.err" >&2; }
      kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; BPID=
    done
  done
done

echo "## The worker pool: ops/s on one request queue (vufs-microbench, medians of $REPS rounds of $MS ms; pool = $POOL threads)"
echo
echo "| share | op | qd | vufsd no pool | vufsd pool | Rust no pool | Rust pool | vufsd pool / none | vufsd pool / Rust pool |"
echo "|---|---|---|---|---|---|---|---|---|"
fig() {   # label op qd: the median of the rounds' figures
  awk -v l="$1" -v o="$2" -v q="$3" '$2=="target="l && $3=="op="o && $4=="qd="q {sub("ops_s=","",$6); print $6}' "$raw" |
    sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}' || echo "-"; }
for s in "${SHARES[@]}"; do
  name=${s%%:*}
  for op in getattr read4k read1m; do
    for qd in 1 16; do
      v0=$(fig "$name/vufsd/0" $op $qd) vp=$(fig "$name/vufsd/$POOL" $op $qd)
      r0=$(fig "$name/rust/0" $op $qd) rp=$(fig "$name/rust/$POOL" $op $qd)
      printf '| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s | %s |\n' "$name" $op $qd "${v0:-0}" "${vp:-0}" \
        "${r0:-0}" "${rp:-0}" "$(ratio "$vp" "$v0")" "$(ratio "$vp" "$rp")"
    done
  done
done
