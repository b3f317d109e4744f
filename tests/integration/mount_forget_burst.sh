#!/usr/bin/env bash
# A burst of FORGETs far larger than the hiprio queue loses none: vufs-mount with a one-entry hiprio queue, a few
# thousand files looked up, then drop_caches makes the kernel forget them all at once. vufsd holds one O_PATH fd
# per node it has not been told to forget, so its fd count must come back to where it was before the lookups,
# and vufs-mount must report forgets that waited for room on the queue (the path under test was taken).
# Then with the backend stopped: the readers still take every forget (none waits for the backend), and when the
# backend is killed the waiting forgets are dropped and the mount unmounts cleanly.
# timeout: 180
. "$(dirname "$0")/lib.sh"

[ -w /proc/sys/vm/drop_caches ] || skip "cannot write /proc/sys/vm/drop_caches (not root?)"
N=3000

fds() { ls "/proc/$BACKEND_PID/fd" | wc -l; }

# Files looked up once each (create, then stat), in a directory of their own.
make_files() {
  mkdir "$MNT/d" || fail "mkdir"
  (cd "$MNT/d" && seq -f "f%g" "$N" | xargs touch) || fail "creating $N files"
  find "$MNT/d" -type f -exec stat -c %i {} + >/dev/null || fail "stat of the files"
}

# The "forgets:" line vufs-mount logs at exit, and the count before WORDS in it.
summary() { grep -o "forgets: .*" "$SCRATCH/mount.log" || { cat "$SCRATCH/mount.log"; fail "no forget summary"; }; }
count_before() { sed -n "s/.* \([0-9]*\) $1.*/\1/p" <<<"$2"; }

# Unconfined, so that $BACKEND_PID is the process holding the fds.
start_vufsd --sandbox=none --seccomp=none
mount_backend --hiprio-size=1
stat "$MNT" >/dev/null || fail "stat of the root"
base=$(fds)
make_files
peak=$(fds)
[ "$peak" -ge $((base + N)) ] || fail "vufsd holds $peak fds after $N lookups, $base before: not one per node?"
sync
echo 2 > /proc/sys/vm/drop_caches
back() { [ "$(fds)" -le "$base" ]; }
wait_for 30 back || fail "vufsd holds $(fds) fds 30 s after drop_caches, $base before the lookups: forgets lost"
echo "vufsd fds: $base before the lookups, $peak after, $(fds) after drop_caches"
finish
s=$(summary); echo "vufs-mount, $s"
[ "$(count_before "waited for room" "$s")" -gt 0 ] || fail "no forget waited for room: the full-queue path was not taken"
grep -q " 0 dropped, 0 unsent" <<<"$s" || fail "forgets dropped or unsent: $s"

rm -rf "${SHARE:?}"/* "$SOCK"
start_vufsd --sandbox=none --seccomp=none
mount_backend --hiprio-size=1
make_files
sync
kill -STOP "$BACKEND_PID"
echo 2 > /proc/sys/vm/drop_caches
sleep 2
kill -9 "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
timeout 10 umount "$MNT" || fail "umount failed or hung"
wait_exit "$MOUNT_PID" "vufs-mount (after the unmount)"
wait "$MOUNT_PID" || { cat "$SCRATCH/mount.log"; fail "vufs-mount exited with an error"; }; MOUNT_PID=
grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SCRATCH/mount.log" && { cat "$SCRATCH/mount.log"; fail "sanitizer report"; }
s=$(summary); echo "backend stopped, then killed: vufs-mount, $s"
[ "$(count_before "from the kernel" "$s")" -ge "$N" ] || fail "the readers did not take every forget with the backend stopped"
[ "$(count_before "dropped" "$s")" -gt 0 ] || fail "no forget was waiting when the backend died"
grep -q " 0 unsent" <<<"$s" || fail "forgets left unsent after the backend died: $s"
echo "ok"
