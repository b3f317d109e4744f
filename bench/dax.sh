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
. "$(dirname "$0")/lib.sh"
bench_init dax "$@"
REPS=${REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)} SECS=${SECS:-$([ -n "$QUICK" ] && echo 2 || echo 5)}
BIG_MIB=${BIG_MIB:-$([ -n "$QUICK" ] && echo 128 || echo 512)}
bench_share $((BIG_MIB + 512))
head -c $((64 << 20)) /dev/urandom >"$SHARE/data64"
head -c $((BIG_MIB << 20)) /dev/zero >"$SHARE/big"
chmod -R a+rwX "$SHARE"
bench_metabench

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
    vufsd-dax) bench_start "$sock" "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --tag=myfs \
                 --dax-window=256M --cache=auto; opts=(--device generic --mount-opts dax=always) ;;
    vufsd) bench_start "$sock" "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --tag=myfs --cache=auto
           opts=(--device generic) ;;
    rust) bench_start "$sock" "$ROOT/scripts/peers/virtiofsd-rust.sh" --socket-path="$sock" --shared-dir="$SHARE" \
            --tag=myfs --cache=auto; opts=(--device generic) ;;
  esac
  target=$sock; [ "$t" = 9p ] && target=9p:$SHARE
  note "$t: booting"
  "$ROOT/tests/vm/guest.sh" --qemu 11.1 "${opts[@]}" "$target" "$WORK/guest.sh" "$BIN/vufs-metabench" \
    >"$WORK/console-$t.txt" 2>"$WORK/guest-$t.err" || note "$t: guest.sh exit $? ($(tail -1 "$WORK/guest-$t.err"))"
  wait "${PIDS[@]}" 2>/dev/null; PIDS=()
}

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
grep -h 'dax:' "$WORK/backend-vufsd-dax.sock.log" >&2
