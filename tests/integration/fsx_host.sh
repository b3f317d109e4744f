#!/usr/bin/env bash
# Data integrity through vufs-mount: the fsx-style stress (reads, writes, truncates, mmap, fsync, fallocate,
# copy_file_range against a model) on vufsd in cache auto, always+writeback and never, and on QEMU's virtiofsd
# (whose mmap data corruption is reported, not required).
# timeout: 400
. "$(dirname "$0")/lib.sh"

run_fsx() {
  local label=$1; shift
  "$FSX" -q "$@" "$MNT" >"$SCRATCH/fsx-$label.txt" 2>&1 || { cat "$SCRATCH/fsx-$label.txt"; fail "fsx on $label"; }
  echo "$label: $(tail -1 "$SCRATCH/fsx-$label.txt")"
}

for mode in "--cache=auto" "--cache=always --writeback" "--cache=never"; do
  # shellcheck disable=SC2086
  start_vufsd $mode
  mount_backend
  # direct I/O (cache=never) cannot take shared writable mappings before FUSE 7.39: no mmap ops there
  case $mode in *never*) run_fsx "vufsd $mode" -n 20000 -s 7 -N ;; *) run_fsx "vufsd $mode" -n 20000 -s 7 ;; esac
  finish
done
start_qemu_virtiofsd -o cache=auto
mount_backend
# QEMU 7.2's virtiofsd opens files O_APPEND on the host, so a page written back from a shared mapping through
# such a handle lands at the end of the file: its mmap run is reported, not required (a peer bug, see README).
run_fsx "qemu-virtiofsd cache=auto, no mmap" -n 20000 -s 7 -N
if "$FSX" -q -n 20000 -s 7 "$MNT" >"$SCRATCH/fsx-qemu-mmap.txt" 2>&1; then
  echo "qemu-virtiofsd cache=auto with mmap: $(tail -1 "$SCRATCH/fsx-qemu-mmap.txt")"
else
  echo "qemu-virtiofsd cache=auto with mmap: FAILS (peer bug): $(grep -m1 'FAIL at op' "$SCRATCH/fsx-qemu-mmap.txt")"
fi
unmount_peer
