#!/usr/bin/env bash
# The DAX window measured in a real guest, against the same backend without it and the peers, in one run.
#
#   bench/dax.sh [--quick] [--out=FILE]
#
# Guest: Debian bookworm's 6.1 kernel on QEMU 11.1.3 (Debian sid's, scripts/peers/qemu111.sh), TCG, 2 vCPUs, 1 GiB.
# Targets, each one boot, the share a tmpfs this script mounts:
#   vufsd-dax    vufsd --dax-window=256M on the generic vhost-user-test-device-pci, mounted dax=always
#   vufsd        vufsd without a window, same device, cache=auto
#   rust         Rust virtiofsd 1.14 (scripts/peers/virtiofsd-rust.sh --tag, cache=auto), same device: no DAX
#   9p           QEMU 11.1's virtio-9p (local, security_model=passthrough), the guest's default cache mode
# Rows (vufs-metabench, static, in the guest; every figure the median of REPS rounds inside the boot, caches
# dropped before each): 64 MiB sequential read (1 MiB reads) and write (1 MiB writes + fsync), 4 KiB random pread
# for 5 s on the 64 MiB file, 4 KiB random copies through a MAP_SHARED mapping for 5 s; then, once, how much the
# guest's page cache grows while it reads a 512 MiB file. Ratios are between figures of this run.
# Results to stdout and build/bench-dax.md (--out); progress to stderr. Needs root and scripts/deps.sh bench.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build OUT=$BUILD/bench-dax.md QUICK=
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    --out=*) OUT=${a#--out=} ;;
    *) echo "usage: bench/dax.sh [--quick] [--out=FILE]" >&2; exit 2 ;;
  esac
done
REPS=${REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)} SECS=${SECS:-$([ -n "$QUICK" ] && echo 2 || echo 5)}
BIG_MIB=${BIG_MIB:-$([ -n "$QUICK" ] && echo 128 || echo 512)}
note() { echo "dax.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || { note "needs root"; exit 1; }
[ -x "$BUILD/vufsd" ] || { note "build first: make all"; exit 1; }
"$ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || { note "QEMU 11.1 unavailable"; exit 1; }

WORK=$(mktemp -d /tmp/vufs-bench-dax.XXXXXX)
SHARE=$WORK/share BIN=$WORK/bin PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  umount "$SHARE" 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$SHARE" "$BIN"
mount -t tmpfs -o size=$((BIG_MIB + 512))m tmpfs "$SHARE" || { note "cannot mount a tmpfs"; exit 1; }
head -c $((64 << 20)) /dev/urandom >"$SHARE/data64"
head -c $((BIG_MIB << 20)) /dev/zero >"$SHARE/big"
chmod -R a+rwX "$SHARE"
cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o "$BIN/vufs-metabench" "$ROOT/bench/vufs-metabench.c" ||
  { note "cannot build a static vufs-metabench"; exit 1; }

cat >"$WORK/guest.sh" <<EOF
B=/bin/vufs-metabench
for r in \$(seq 1 $REPS); do
  \$B drop; \$B read /mnt/data64 | sed 's/^/GRES /'
  \$B write /mnt/w.\$r 64 | sed 's/^/GRES /'; rm -f /mnt/w.\$r
  \$B drop; \$B randread /mnt/data64 $SECS | sed 's/^/GRES /'
  \$B drop; \$B mmapread /mnt/data64 $SECS | sed 's/^/GRES /'
done
\$B drop; c0=\$(\$B cached | cut -d' ' -f2); \$B read /mnt/big >/dev/null; c1=\$(\$B cached | cut -d' ' -f2)
echo "GRES bigcache \$((c1 - c0))"
EOF

# run TARGET -> guest console in $WORK/console-TARGET.txt
run() {
  local t=$1 sock=$WORK/$1.sock opts=() target
  case $t in
    vufsd-dax) "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --tag=myfs --dax-window=256M \
                 --cache=auto 2>"$WORK/$t.log" & PIDS+=($!); opts=(--device generic --mount-opts dax=always) ;;
    vufsd) "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --tag=myfs --cache=auto 2>"$WORK/$t.log" &
           PIDS+=($!); opts=(--device generic) ;;
    rust) "$ROOT/scripts/peers/virtiofsd-rust.sh" --socket-path="$sock" --shared-dir="$SHARE" --tag=myfs \
            --cache=auto 2>"$WORK/$t.log" & PIDS+=($!); opts=(--device generic) ;;
    9p) ;;
  esac
  if [ "$t" = 9p ]; then
    target=9p:$SHARE
  else
    target=$sock
    for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
  fi
  note "$t: booting"
  "$ROOT/tests/vm/guest.sh" --qemu 11.1 "${opts[@]}" "$target" "$WORK/guest.sh" "$BIN/vufs-metabench" \
    >"$WORK/console-$t.txt" 2>"$WORK/guest-$t.err" || note "$t: guest.sh exit $? ($(tail -1 "$WORK/guest-$t.err"))"
  wait "${PIDS[@]}" 2>/dev/null; PIDS=()
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }
# fig TARGET STEP -> the median figure: MiB/s for read/write, ops/s for the random rows, KiB for bigcache
fig() {
  local vals
  vals=$(awk -v s="$2" '$1 == "GRES" && $2 == s { print $3 }' "$WORK/console-$1.txt")
  [ -n "$vals" ] || { echo ""; return; }
  case $2 in
    read|write) echo "$vals" | awk '{ printf "%.1f\n", 64 / $1 }' | median ;;
    *) echo "$vals" | median ;;
  esac
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }' || echo "-"; }

TARGETS=(vufsd-dax vufsd rust 9p)
for t in "${TARGETS[@]}"; do run "$t"; done
{
  echo "### DAX in a QEMU 11.1.3 guest (6.1 kernel, TCG, 2 vCPUs; medians of $REPS rounds)"
  echo
  echo "| row | vufsd + DAX | vufsd | Rust virtiofsd 1.14 | virtio-9p | DAX / vufsd | DAX / Rust | DAX / 9p |"
  echo "|---|---|---|---|---|---|---|---|"
  for step in read write randread mmapread; do
    case $step in
      read) label="64 MiB sequential read, MiB/s" ;; write) label="64 MiB sequential write + fsync, MiB/s" ;;
      randread) label="4 KiB random pread, ops/s" ;; mmapread) label="4 KiB random reads through mmap, ops/s" ;;
    esac
    d=$(fig vufsd-dax $step) v=$(fig vufsd $step) r=$(fig rust $step) p=$(fig 9p $step)
    echo "| $label | ${d:--} | ${v:--} | ${r:--} | ${p:--} | $(ratio "$d" "$v") | $(ratio "$d" "$r") | $(ratio "$d" "$p") |"
  done
  echo "| guest page cache after reading a $BIG_MIB MiB file, MiB | $(( $(fig vufsd-dax bigcache || echo 0) / 1024 )) | $(( $(fig vufsd bigcache || echo 0) / 1024 )) | $(( $(fig rust bigcache || echo 0) / 1024 )) | $(( $(fig 9p bigcache || echo 0) / 1024 )) | | | |"
} | tee "$OUT"
grep -h 'dax:' "$WORK/vufsd-dax.log" >&2
