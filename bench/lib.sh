# shellcheck shell=bash
# What the in-guest benchmarks (bench/dax.sh, bench/multiqueue.sh) share. Source it, then:
#   bench_init NAME "$@"    parses --quick and --out=FILE (default build/bench-NAME.md); checks root, the build and
#                           QEMU 11.1; sets ROOT BUILD OUT QUICK WORK SHARE BIN PIDS; removes WORK (and stops the
#                           backends in PIDS) at exit
#   bench_share MIB         mounts a tmpfs of MIB MiB on SHARE
#   bench_metabench         builds bench/vufs-metabench.c statically into BIN (the guest has no libc)
#   bench_start SOCK CMD... starts a backend in the background (log WORK/backend-SOCKNAME.log), waits for SOCK
#   median                  the median of the numbers on stdin (empty when there are none)
#   note MSG                progress to stderr
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build

note() { echo "$BENCH_NAME: $*" >&2; }

bench_init() {
  BENCH_NAME=$1.sh; shift
  OUT=$BUILD/bench-${BENCH_NAME%.sh}.md QUICK=
  local a
  for a in "$@"; do
    case $a in
      --quick) QUICK=1 ;;
      --out=*) OUT=${a#--out=} ;;
      *) echo "usage: bench/$BENCH_NAME [--quick] [--out=FILE]" >&2; exit 2 ;;
    esac
  done
  [ "$(id -u)" = 0 ] || { note "needs root"; exit 1; }
  [ -x "$BUILD/vufsd" ] || { note "build first: make all"; exit 1; }
  "$ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || { note "QEMU 11.1 unavailable"; exit 1; }
  WORK=$(mktemp -d "/tmp/vufs-bench-${BENCH_NAME%.sh}.XXXXXX")
  SHARE=$WORK/share BIN=$WORK/bin PIDS=()
  mkdir -p "$SHARE" "$BIN"
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  umount "$SHARE" 2>/dev/null; rm -rf "$WORK"
}

bench_share() {
  mount -t tmpfs -o "size=$1m" tmpfs "$SHARE" || { note "cannot mount a tmpfs"; exit 1; }
}

bench_metabench() {
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o "$BIN/vufs-metabench" \
    "$ROOT/bench/vufs-metabench.c" || { note "cannot build a static vufs-metabench"; exit 1; }
}

bench_start() {
  local sock=$1 i; shift
  "$@" >"$WORK/backend-$(basename "$sock").log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
  note "no socket $sock"; return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
