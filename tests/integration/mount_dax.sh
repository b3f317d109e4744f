#!/usr/bin/env bash
# vufs-mount --dax=always on vufsd --dax-window=32M (16 ranges of 2 MiB, so reading 20 files of 3 MiB reclaims):
# files of sizes around page and range edges written on the host read back equal through the mount; overwrites
# through the mount that do not extend the file (served into the window) and appends (forwarded) are seen on the
# host; a file shrunk on the host under its mapping reads as the host's (the bridge survives the SIGBUS and
# forwards); fsx passes on the DAX mount (cache auto, always+writeback, never); the logs show SETUPMAPPING, REMOVEMAPPING (reclaim and before FORGET),
# reads and writes from the window, and SHMEM_MAP/UNMAP served by the frontend. The same reads with --dax=never
# use no window; vufsd without a window and --dax=always logs once that DAX is not available and works as without.
# --dax=inode maps only the files vufsd marks FUSE_ATTR_DAX (whole pages by default), and none with --dax-files=none.
# vufsd and vufs-mount (the sanitizer build when there is one) exit 0 with no report.
# timeout: 300
. "$(dirname "$0")/lib.sh"

SIZES="0 1 4095 4096 4097 2097151 2097152 2097153 5242883"

make_files() {
  for s in $SIZES; do head -c "$s" /dev/urandom > "$SHARE/f$s"; done
  for i in $(seq 1 20); do head -c $((3 << 20)) /dev/urandom > "$SHARE/rr$i"; done
}

# Drops the mount's page cache of a file, so that the next read sends READ (to the window) again.
uncache() { dd if="$1" iflag=nocache count=0 status=none; }

read_sizes() {
  for s in $SIZES; do cmp "$SHARE/f$s" "$MNT/f$s" || fail "$1: file of $s bytes differs through the mount"; done
}

overwrite_and_append() {
  # Non-extending overwrites (whole pages and odd bytes, below and in the last page), then appends.
  for s in 4096 2097152 5242883; do
    cp "$SHARE/f$s" "$SCRATCH/expect"
    head -c 5000 /dev/urandom > "$SCRATCH/patch"
    for off in 0 4096 $((s - 5000)); do
      [ "$off" -ge 0 ] && [ $((off + 5000)) -le "$s" ] || continue
      dd if="$SCRATCH/patch" of="$MNT/f$s" bs=5000 seek="$off" oflag=seek_bytes conv=notrunc status=none
      dd if="$SCRATCH/patch" of="$SCRATCH/expect" bs=5000 seek="$off" oflag=seek_bytes conv=notrunc status=none
    done
    cmp "$SCRATCH/expect" "$SHARE/f$s" || fail "$1: overwrite of the $s-byte file not seen on the host"
    head -c 7777 /dev/urandom | tee -a "$SCRATCH/expect" >> "$MNT/f$s"
    cmp "$SCRATCH/expect" "$SHARE/f$s" || fail "$1: append to the $s-byte file not seen on the host"
    uncache "$MNT/f$s"
    cmp "$SCRATCH/expect" "$MNT/f$s" || fail "$1: the $s-byte file after overwrite and append, read back"
  done
}

round_robin() {
  for pass in 1 2; do
    for i in $(seq 1 20); do
      uncache "$MNT/rr$i"
      cmp "$SHARE/rr$i" "$MNT/rr$i" || fail "$1: round robin pass $pass, file rr$i differs"
    done
  done
}

# The host shrinks a file the mount has mapped; the reader keeps it open (the kernel's size is stale) and reads
# again: the window faults past the new end, the bridge forwards, the bytes are the host's (then zeros, see below).
shrink_under_mapping() {
  head -c $((4 << 20)) /dev/urandom > "$SHARE/shrink"
  python3 - "$MNT/shrink" "$SHARE/shrink" <<'PY' || fail "$1: a file shrunk on the host reads wrong through the mount"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.pread(fd, 4 << 20, 0) == open(sys.argv[2], "rb").read()
os.truncate(sys.argv[2], (1 << 20) + 100)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
got = os.pread(fd, 4 << 20, 0)
want = open(sys.argv[2], "rb").read()
# Past the host's end, zeros at most: concurrent short READs can leave the kernel's size a little past the end
# (fuse_short_read skips an update whose attr_version is stale), with or without DAX.
ok = got[:len(want)] == want and len(got) >= len(want) and not any(got[len(want):])
print("shrunk: read %d bytes, the host has %d, equal: %s" % (len(got), len(want), ok), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

counter() {   # log pattern: the number before the pattern in the last matching line
  grep -o "[0-9]* $2" "$1" | tail -1 | cut -d' ' -f1
}

command -v python3 >/dev/null || skip "python3 is needed"
make_files

# Shared coherence: no lease, so that the host's truncation reaches the bridge's window and its fault fallback
# (with vufsd's default lease the range would turn into a copy first: test_dax covers that).
start_vufsd --dax-window=32M --dax-coherence=shared
mount_backend --dax=always
read_sizes "dax=always"
overwrite_and_append "dax=always"
round_robin "dax=always"
shrink_under_mapping "dax=always"
"$FSX" -q -n 10000 -s 11 "$MNT" >"$SCRATCH/fsx.txt" 2>&1 || { cat "$SCRATCH/fsx.txt"; fail "fsx on the DAX mount"; }
echo "fsx: $(tail -1 "$SCRATCH/fsx.txt")"
rm -f "$MNT"/rr* # FORGET after unlink: ranges removed first
finish
grep "dax:\|DAX window" "$SCRATCH/mount.log"
setups=$(counter "$SCRATCH/mount.log" SETUPMAPPING) reclaimed=$(counter "$SCRATCH/mount.log" reclaimed)
removed=$(counter "$SCRATCH/mount.log" "ranges removed") reads=$(counter "$SCRATCH/mount.log" "reads (")
writes=$(counter "$SCRATCH/mount.log" "writes (") faults=$(counter "$SCRATCH/mount.log" faults)
maps=$(counter "$SCRATCH/mount.log" SHMEM_MAP) unmaps=$(counter "$SCRATCH/mount.log" SHMEM_UNMAP)
[ "${setups:-0}" -ge 40 ] || fail "only ${setups:-0} SETUPMAPPING"
[ "${reclaimed:-0}" -ge 20 ] || fail "only ${reclaimed:-0} ranges reclaimed with 40 ranges of files in a window of 16"
[ "${removed:-0}" -gt "$reclaimed" ] || fail "no range removed before a FORGET"
[ "${reads:-0}" -gt 0 ] && [ "${writes:-0}" -gt 0 ] || fail "no read or write served from the window"
[ "${faults:-0}" -ge 1 ] || fail "the file shrunk on the host made no fault: the fallback was not exercised"
[ "${maps:-0}" -ge "$setups" ] && [ "${unmaps:-0}" -ge 1 ] || fail "vufsd's SHMEM_MAP/UNMAP did not reach the frontend"
grep -q "refused" "$SCRATCH/mount.log" && ! grep -q " 0 refused" "$SCRATCH/mount.log" &&
  fail "the frontend refused a map vufsd sent"
grep -q "dax: a window of 32 MiB" "$SCRATCH/backend.log" || fail "vufsd did not offer the window"
grep "ranges mapped" "$SCRATCH/backend.log"
vmapped=$(counter "$SCRATCH/backend.log" "ranges mapped") vremoved=$(counter "$SCRATCH/backend.log" removed)
upgrades=$(counter "$SCRATCH/mount.log" "write upgrades")
[ "${vmapped:-0}" -ge $((setups - ${upgrades:-0})) ] ||
  fail "vufsd mapped ${vmapped:-0} ranges for $setups SETUPMAPPING (${upgrades:-0} of them upgrades)"
[ "${vremoved:-0}" -ge "$removed" ] || fail "vufsd removed ${vremoved:-0} ranges, vufs-mount asked $removed"
echo "dax=always: ok ($setups setups, $reclaimed reclaimed, $removed removed, $faults faults)"

# fsx in the other cache modes: writeback (the kernel's size leads the backend's) and direct I/O (no mmap ops).
rm -f "$SHARE"/shrink "$SHARE"/rr*
for mode in "--cache=always --writeback" "--cache=never"; do
  # shellcheck disable=SC2086
  start_vufsd --dax-window=32M $mode
  mount_backend --dax=always --dax-window=8M   # 4 ranges of vufsd's 16: reclaim all along
  case $mode in *never*) nommap=-N ;; *) nommap= ;; esac
  # shellcheck disable=SC2086
  "$FSX" -q -n 5000 -s 13 $nommap "$MNT" >"$SCRATCH/fsx.txt" 2>&1 || { cat "$SCRATCH/fsx.txt"; fail "fsx, dax, $mode"; }
  finish
  grep -q "from the window: [1-9]" "$SCRATCH/mount.log" || fail "fsx, $mode: nothing served from the window"
  grep -q "a DAX window of 8 MiB" "$SCRATCH/mount.log" || fail "fsx, $mode: --dax-window=8M not taken"
  echo "fsx $mode: $(tail -1 "$SCRATCH/fsx.txt")"
done

make_files
start_vufsd --dax-window=32M
mount_backend --dax=never
read_sizes "dax=never"
overwrite_and_append "dax=never"
finish
grep -q "dax:\|DAX window" "$SCRATCH/mount.log" && { cat "$SCRATCH/mount.log"; fail "--dax=never used the window"; }
echo "dax=never: ok"

# dax=inode: vufsd's default --dax-files=page marks whole-page files only (FUSE_ATTR_DAX); the others are forwarded.
start_vufsd --dax-window=32M
mount_backend --dax=inode
for s in 1 4097 2097153 5242883; do cmp "$SHARE/f$s" "$MNT/f$s" || fail "dax=inode: file of $s bytes differs"; done
finish
grep -q "SETUPMAPPING" "$SCRATCH/mount.log" && { cat "$SCRATCH/mount.log"; fail "dax=inode: odd sizes were mapped"; }
head -c 4194304 /dev/urandom >"$SHARE/pages4m"   # (the f* of whole pages had bytes appended above)
start_vufsd --dax-window=32M
mount_backend --dax=inode
cmp "$SHARE/pages4m" "$MNT/pages4m" || fail "dax=inode: a file of whole pages differs"
finish
reads=$(counter "$SCRATCH/mount.log" "reads (")
[ "${reads:-0}" -gt 0 ] || { cat "$SCRATCH/mount.log"; fail "dax=inode: whole-page files not read from the window"; }
start_vufsd --dax-window=32M --dax-files=none
mount_backend --dax=inode
read_sizes "dax=inode, --dax-files=none"
finish
grep -q "SETUPMAPPING" "$SCRATCH/mount.log" && { cat "$SCRATCH/mount.log"; fail "dax=inode: mapped with --dax-files=none"; }
echo "dax=inode: ok ($reads reads from the window, whole-page files only)"

start_vufsd
mount_backend -o dax=always
read_sizes "no window"
finish
[ "$(grep -c "DAX is not available" "$SCRATCH/mount.log")" = 1 ] || { cat "$SCRATCH/mount.log"; fail "no window: not logged once"; }
echo "backend without a window: ok"
