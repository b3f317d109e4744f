#!/usr/bin/env bash
# Dirty-page logging against a real vufsd: vufs-mount --dirty-log turns logging on from the start, as QEMU has it
# during a migration's pre-copy. While it serves real requests vufsd marks pages (replies, used rings) in the log,
# and marks them again after the log is cleared as the VMM clears it at each sync; an idle mount marks nothing;
# the data read is right. (Which pages exactly is proven by unit/test_vhost_user, where the layout is known.)
# timeout: 120
. "$(dirname "$0")/lib.sh"

LOG=$SCRATCH/dirty.log
# The set bits of the log, as a count.
marked() { python3 -c 'import sys; print(sum(bin(b).count("1") for b in open(sys.argv[1], "rb").read()))' "$LOG"; }
# Zeroes the log in place (never shorter: a shrunk log file is a hostile frontend's trick).
clear_log() { dd if=/dev/zero of="$LOG" bs="$(stat -c %s "$LOG")" count=1 conv=notrunc status=none; }

start_vufsd --cache=never
mount_backend --dirty-log="$LOG"
grep -q "dirty logging on" "$SCRATCH/backend.log" || { cat "$SCRATCH/backend.log"; fail "vufsd did not turn logging on"; }
[ "$(marked)" -gt 0 ] || fail "nothing marked after INIT and the root's attributes"

dd if=/dev/urandom of="$SHARE/data" bs=1M count=8 status=none
cmp "$SHARE/data" "$MNT/data" || fail "8 MiB read through the mount"
clear_log
# cache=never: each 1 MiB read() is one READ whose reply fills a 1 MiB buffer: at least its 256 pages.
dd if="$MNT/data" of=/dev/null bs=1M status=none || fail "1 MiB reads"
after_read=$(marked)
[ "$after_read" -ge 256 ] || fail "only $after_read pages marked by 1 MiB reads"

clear_log
sleep 1
[ "$(marked)" -eq 0 ] || fail "$(marked) pages marked while the mount was idle"
stat "$MNT/data" >/dev/null && ls "$MNT" >/dev/null
[ "$(marked)" -gt 0 ] || fail "nothing marked by a stat and a listing after a clear"
finish
grep -q "outside the log" "$SCRATCH/backend.log" && fail "vufsd marked pages beyond the log"
echo "vufsd: $after_read pages marked by 8 reads of 1 MiB; marks again after a clear, none when idle"
