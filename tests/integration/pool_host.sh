#!/usr/bin/env bash
# vufsd --thread-pool-size (worker threads serving one request queue, as virtiofsd's pool), through vufs-mount:
#  1. --thread-pool-size=4 with host locks (a lock that waits runs on its own thread, handed on by a worker):
#     the POSIX suite gives the native results but for the known limits, and fsx (20,000 operations) passes;
#  2. 4 processes read 4 files of 16 MiB at once through cache=never (each read a request): every byte right,
#     and vufsd's pool says at exit that it served them with 2 or more requests in service at once;
#  3. the pool stops cleanly in the middle of that traffic: vufs-mount is killed while the readers run, and
#     vufsd must exit 0 with no sanitizer report.
# timeout: 300
. "$(dirname "$0")/lib.sh"

start_vufsd --thread-pool-size=4 --posix-lock --flock --cache=auto --xattr
mount_backend -o allow_other
posix_through "vufsd-pool4" "vufsd vufsd:auto"
"$FSX" -q -n 20000 -s 11 "$MNT" >"$SCRATCH/fsx.txt" 2>&1 || { cat "$SCRATCH/fsx.txt"; fail "fsx on the pool"; }
echo "fsx: $(tail -1 "$SCRATCH/fsx.txt")"
finish
grep "pool:" "$SCRATCH/backend.log"
rm -rf "${SHARE:?}"/*

for i in 1 2 3 4; do head -c 16M /dev/urandom >"$SHARE/f$i"; done
sums=$(cd "$SHARE" && md5sum f1 f2 f3 f4)
start_vufsd --thread-pool-size=4 --cache=never
mount_backend
readers=()
for i in 1 2 3 4; do (dd if="$MNT/f$i" bs=128k iflag=direct status=none | md5sum >"$SCRATCH/sum$i") & readers+=($!); done
wait "${readers[@]}"
for i in 1 2 3 4; do
  grep -q "$(awk '{print $1}' "$SCRATCH/sum$i")  f$i" <<<"$sums" || fail "f$i read back wrong through the pool"
done
finish
line=$(grep "pool: 4 threads" "$SCRATCH/backend.log") || { cat "$SCRATCH/backend.log"; fail "no pool line at exit"; }
echo "parallel readers: $line"
most=$(sed -n 's/.*at most \([0-9]*\) at once.*/\1/p' <<<"$line")
[ "${most:-0}" -ge 2 ] || fail "the pool never served two requests at once ($line)"

# 3. The frontend goes away with requests in the pool: vufsd drains them and exits cleanly.
start_vufsd --thread-pool-size=4 --cache=never
mount_backend
readers=()
for i in 1 2 3 4; do
  (while dd if="$MNT/f$i" of=/dev/null bs=1M iflag=direct status=none 2>/dev/null; do :; done) & readers+=($!)
done
sleep 2
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null; MOUNT_PID=
wait_exit "$BACKEND_PID" "vufsd (after its frontend died under load)"
wait "$BACKEND_PID"; brc=$?; BACKEND_PID=
umount -l "$MNT" 2>/dev/null
wait "${readers[@]}" 2>/dev/null
grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCRATCH/backend.log" && { cat "$SCRATCH/backend.log"; fail "sanitizer report"; }
[ $brc -eq 0 ] || { tail -20 "$SCRATCH/backend.log"; fail "vufsd exited with $brc after its frontend died"; }
grep "pool:" "$SCRATCH/backend.log"
echo "pool_host: done"
