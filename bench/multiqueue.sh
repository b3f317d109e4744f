#!/usr/bin/env bash
# Request queues measured in a real guest: Debian sid's 7.2 kernel (its virtiofs driver maps request queues to
# CPUs) with 4 vCPUs on QEMU 11.1.3's vhost-user-fs-pci, against vufsd with 1, 2 and 4 request queues and Rust
# virtiofsd 1.14 (one request queue: "we currently only support one"), in one run; and both on one queue with a
# worker pool of 4 (--thread-pool-size=4), which serves one queue's requests in parallel.
#
#   bench/multiqueue.sh [--quick] [--out=FILE]
#
# The share is a tmpfs this script mounts; cache=never for every backend, so every stat and read reaches it.
# In the guest, 4 processes pinned one per vCPU (taskset) run at once, each on files of its own:
#   stat   stat of 1,000 files (vufs-metabench stat), the time of the slowest process -> stats/s for all four
#   read   4 KiB random preads of a 16 MiB file for SECS s (vufs-metabench randread), summed over the four
# Each figure is the median of REPS rounds inside the boot. virtio-9p (QEMU 11.1's, the same guest with the 9p
# modules of sid's linux-modules package, its default cache=none) is the last row.
# Results to stdout and build/bench-multiqueue.md (--out); progress to stderr. Needs root.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
bench_init multiqueue "$@"
REPS=${REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)} SECS=${SECS:-$([ -n "$QUICK" ] && echo 2 || echo 4)}
bench_share 256
for p in 0 1 2 3; do
  mkdir -p "$SHARE/d$p"
  for i in $(seq 0 999); do : >"$SHARE/d$p/$(printf 'f%06d' "$i")"; done
  head -c $((16 << 20)) /dev/urandom >"$SHARE/data$p"
done
chmod -R a+rwX "$SHARE"
bench_metabench

cat >"$WORK/guest.sh" <<EOF
B=/bin/vufs-metabench
echo "GRES cpus \$(grep -c ^processor /proc/cpuinfo)"
for r in \$(seq 1 $REPS); do
  for p in 0 1 2 3; do taskset \$((1 << p)) \$B stat /mnt/d\$p 1000 >/tmp/stat\$p & done; wait
  echo "GRES stat \$(cat /tmp/stat0 /tmp/stat1 /tmp/stat2 /tmp/stat3 | awk '\$2 > m { m = \$2 } END { printf "%.0f", 4000 / m }')"
  for p in 0 1 2 3; do taskset \$((1 << p)) \$B randread /mnt/data\$p $SECS >/tmp/rr\$p & done; wait
  echo "GRES read \$(cat /tmp/rr0 /tmp/rr1 /tmp/rr2 /tmp/rr3 | awk '{ s += \$2 } END { printf "%.0f", s }')"
done
EOF

# One boot against TARGET (a socket, or 9p:DIR) with QUEUES request queues; prints "stat N" and "read N" (medians).
boot() {   # name target queues
  local c=$WORK/console-$1.txt q=(--queues "$3")
  [[ $2 == 9p:* ]] && q=()
  "$ROOT/tests/vm/guest.sh" --qemu 11.1 --kernel sid --smp 4 --mem 1G "${q[@]}" --timeout 600 \
    "$2" "$WORK/guest.sh" "$BIN/vufs-metabench" >"$c" 2>"$WORK/guest-$1.err" || {
    note "$1: guest.sh failed: $(tail -n 2 "$WORK/guest-$1.err" | tr '\n' ' ')"; return 1; }
  for row in stat read; do
    echo "$row $(grep -a "^GRES $row " "$c" | awk '{ print $3 }' | median)"
  done
}

declare -A R
targets=()
for q in 1 2 4; do
  name="vufsd, $q queue$([ $q -gt 1 ] && echo s)"
  sock=$WORK/vufsd-q$q.sock
  bench_start "$sock" "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --cache=never --queues=$q || continue
  note "booting: $name"
  res=$(boot "q$q" "$sock" $q) || continue
  R["$name stat"]=$(sed -n 's/^stat //p' <<<"$res") R["$name read"]=$(sed -n 's/^read //p' <<<"$res")
  targets+=("$name")
done
name="vufsd, 1 queue, pool of 4"
sock=$WORK/vufsd-pool.sock
if bench_start "$sock" "$BUILD/vufsd" --socket-path="$sock" --shared-dir="$SHARE" --cache=never --thread-pool-size=4; then
  note "booting: $name"
  if res=$(boot pool "$sock" 1); then
    R["$name stat"]=$(sed -n 's/^stat //p' <<<"$res") R["$name read"]=$(sed -n 's/^read //p' <<<"$res")
    targets+=("$name")
  fi
fi
if "$ROOT/scripts/peers/virtiofsd-rust.sh" --version >/dev/null 2>&1; then
  for pool in 0 4; do
    name="Rust virtiofsd 1.14, 1 queue$([ $pool -gt 0 ] && echo ", pool of $pool")"
    sock=$WORK/rust$pool.sock
    bench_start "$sock" "$ROOT/scripts/peers/virtiofsd-rust.sh" --socket-path="$sock" --shared-dir="$SHARE" \
      --cache=never --thread-pool-size=$pool || continue
    note "booting: $name"
    if res=$(boot rust$pool "$sock" 1); then
      R["$name stat"]=$(sed -n 's/^stat //p' <<<"$res") R["$name read"]=$(sed -n 's/^read //p' <<<"$res")
      targets+=("$name")
    fi
  done
fi
name="virtio-9p (QEMU 11.1)"
note "booting: $name"
if res=$(boot 9p "9p:$SHARE" 1); then
  R["$name stat"]=$(sed -n 's/^stat //p' <<<"$res") R["$name read"]=$(sed -n 's/^read //p' <<<"$res")
  targets+=("$name")
fi

base="vufsd, 1 queue"
{
  echo "## Request queues in a 7.2 guest (QEMU 11.1.3 TCG, 4 vCPUs, cache=never; medians of $REPS; $(date -u +%F))"
  echo
  echo "| backend | stat/s (4 procs) | 4 KiB random reads/s (4 procs) | stat vs 1 queue | reads vs 1 queue |"
  echo "|---|---|---|---|---|"
  for t in "${targets[@]}"; do
    s=${R["$t stat"]} r=${R["$t read"]} s1=${R["$base stat"]:-} r1=${R["$base read"]:-}
    rs=$([ -n "$s1" ] && [ -n "$s" ] && awk -v a="$s" -v b="$s1" 'BEGIN { printf "%.2fx", a / b }')
    rr=$([ -n "$r1" ] && [ -n "$r" ] && awk -v a="$r" -v b="$r1" 'BEGIN { printf "%.2fx", a / b }')
    echo "| $t | $s | $r | $rs | $rr |"
  done
} | tee "$OUT"
