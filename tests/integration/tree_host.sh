#!/usr/bin/env bash
# A real workload through vufs-mount: untar a source tree (vufs itself), build it with make inside the mount,
# check the result runs, and rm -rf it; then a short fio job with data verification. On vufsd in every cache
# mode and on QEMU's virtiofsd.
# timeout: 900
. "$(dirname "$0")/lib.sh"
command -v fio >/dev/null || skip "fio is not installed (scripts/deps.sh check installs it)"
tar -C "$VUFS_ROOT" -cf "$SCRATCH/src.tar" Makefile src scripts

workload() {
  local label=$1
  mkdir "$MNT/tree" && tar -C "$MNT/tree" -xf "$SCRATCH/src.tar" || fail "$label: untar"
  make -s -C "$MNT/tree" -j2 BUILD=out out/vufsd >"$SCRATCH/make.log" 2>&1 || { tail "$SCRATCH/make.log"; fail "$label: make"; }
  "$MNT/tree/out/vufsd" --version | grep -q vufsd || fail "$label: the binary built in the mount does not run"
  [ "$(find "$MNT/tree" | wc -l)" = "$(find "$SHARE/tree" | wc -l)" ] || fail "$label: host and mount disagree on the tree"
  rm -rf "$MNT/tree" && [ ! -e "$SHARE/tree" ] || fail "$label: rm -rf"
  fio --name=verify --directory="$MNT" --rw=randrw --bs=4k --size=16m --ioengine=psync --verify=crc32c \
      --do_verify=1 --verify_state_save=0 --runtime=10 --time_based=0 >"$SCRATCH/fio.log" 2>&1 || { tail "$SCRATCH/fio.log"; fail "$label: fio"; }
  grep -q "err= 0" "$SCRATCH/fio.log" || fail "$label: fio reported errors"
  rm -f "$MNT"/verify.*
  echo "$label: untar, make, rm -rf and fio verify ok"
}

for cache in never auto always; do
  start_vufsd --cache=$cache
  mount_backend
  workload "vufsd cache=$cache"
  finish
done
for cache in none auto always; do
  start_qemu_virtiofsd -o cache=$cache
  mount_backend
  workload "qemu-virtiofsd cache=$cache"
  unmount_peer
  wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
  rm -f "$SOCK"
done
