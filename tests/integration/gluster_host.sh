#!/usr/bin/env bash
# GlusterFS under the share: a replica-2 volume (Debian's glusterfs-server, two bricks on this host, reached
# through the host's name on loopback) mounted with the GlusterFS FUSE client, and a directory of it shared.
#  1. POSIX: vufs-posix -q runs natively on the gluster mount (the reference: what GlusterFS itself does), then
#     through vufs-mount on vufsd (cache=auto, xattr) and on QEMU's C virtiofsd (cache=auto, xattr), each in a
#     fresh directory of the same volume. Each backend must give the native gluster results but for the known
#     limits (known-limits.txt: its own, and "gluster": where the kernel's FUSE client keeps the locks a backend
#     does not serve, where GlusterFS's own FUSE client fails), and vufsd's results must equal QEMU virtiofsd's
#     but for QEMU's known limits: vufsd is a drop-in for virtiofsd on GlusterFS.
#  2. A brick killed in the middle of writes loses nothing: 300 files of 64 KiB (random bytes, kept in the
#     scratch directory) are written through vufs-mount on vufsd; the second brick's glusterfsd is SIGKILLed
#     after file 100 (the volume's default client quorum, none, keeps writes going on one brick of two); every
#     file is then read back byte for byte through the mount and on the gluster mount. The brick is restarted
#     (volume start force), healed (volume heal), heal info must reach 0 entries on both bricks, and the healed
#     brick's own directory must hold all 300 files with their bytes.
# vufsd and vufs-mount exit cleanly after each mount (finish). glusterd, bricks and mounts started here are
# stopped at exit; a glusterd already running is used and left running.
# timeout: 480
. "$(dirname "$0")/lib.sh"
need_pkgs glusterfs-server glusterfs-client || fail "could not install glusterfs-server glusterfs-client"
command -v glusterd >/dev/null || fail "glusterd not found after installing glusterfs-server"

# glusterd refuses bricks on "localhost", 127.0.0.1 or any loopback literal; the host's name is accepted even
# when it resolves to loopback (Debian's /etc/hosts), and the bricks must be on an address of this host.
HOST=$(hostname)
getent ahosts "$HOST" >/dev/null || skip "the host name '$HOST' does not resolve: glusterd needs it for the bricks"
VOL=vufs$$
GDIR=$SCRATCH/gluster GMNT=$SCRATCH/gluster/mnt
B1=$GDIR/brick1 B2=$GDIR/brick2
mkdir -p "$GMNT"
GLUSTERD_PID=

gl() { timeout 60 gluster --mode=script "$@"; }

gluster_cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount -l "$MNT" 2>/dev/null
  [ -n "$MOUNT_PID" ] && { kill "$MOUNT_PID" 2>/dev/null; wait "$MOUNT_PID" 2>/dev/null; MOUNT_PID=; }
  [ -n "$BACKEND_PID" ] && { kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=; }
  mountpoint -q "$GMNT" 2>/dev/null && { umount "$GMNT" 2>/dev/null || umount -l "$GMNT"; }
  if gl volume info "$VOL" >/dev/null 2>&1; then
    gl volume stop "$VOL" force >/dev/null 2>&1
    gl volume delete "$VOL" >/dev/null 2>&1
  fi
  # bricks, self-heal daemon and clients of this volume that outlived the stop
  local p
  for p in $(pgrep -f -- "--volfile-id[ =]/?(shd/)?$VOL([ .]|\$)"); do kill -9 "$p" 2>/dev/null; done
  if [ -n "$GLUSTERD_PID" ]; then
    kill "$GLUSTERD_PID" 2>/dev/null
    wait "$GLUSTERD_PID" 2>/dev/null
  fi
  # the bricks and the mount point are in SCRATCH: never let cleanup's rm -rf reach through a mount
  mountpoint -q "$GMNT" 2>/dev/null && { echo "gluster mount still there: leaving $SCRATCH"; SCRATCH=/nonexistent; }
  cleanup
}
trap gluster_cleanup EXIT

gluster_log() { tail -n 30 /var/log/glusterfs/glusterd.log 2>/dev/null; }

# glusterd: ours (in the foreground, so its pid is ours to stop), unless one already answers.
if ! gl volume list >/dev/null 2>&1; then
  glusterd -N >"$GDIR/glusterd.out" 2>&1 &
  GLUSTERD_PID=$!
  wait_for 30 bash -c "timeout 10 gluster --mode=script volume list >/dev/null 2>&1" ||
    { cat "$GDIR/glusterd.out"; gluster_log; fail "glusterd did not answer within 30 s"; }
  echo "glusterd started (pid $GLUSTERD_PID)"
fi
start=$SECONDS
gl volume create "$VOL" replica 2 "$HOST:$B1" "$HOST:$B2" force || { gluster_log; fail "volume create failed"; }
gl volume start "$VOL" || { gluster_log; fail "volume start failed"; }
mount -t glusterfs "$HOST:/$VOL" "$GMNT" ||
  { tail -n 30 "/var/log/glusterfs/${GMNT//\//-}.log" 2>/dev/null; fail "mount -t glusterfs failed"; }
mountpoint -q "$GMNT" || fail "the gluster volume is not mounted"
echo "replica-2 volume $VOL on $HOST:$B1 and $HOST:$B2 mounted at $GMNT ($((SECONDS - start)) s)"

# --- 1. POSIX: native on gluster, through vufsd, through QEMU's virtiofsd ---
mkdir "$GMNT/native"
t=$SECONDS
"$POSIX" -q "$GMNT/native" >"$SCRATCH/posix-native.txt"   # posix_through's reference
echo "== native on gluster: $(grep '^RESULT' "$SCRATCH/posix-native.txt") ($((SECONDS - t)) s)"
grep -v '^PASS' "$SCRATCH/posix-native.txt" | sed 's/^/   /'

SHARE=$GMNT/vufsd; mkdir "$SHARE"; t=$SECONDS
start_vufsd --cache=auto --xattr
mount_backend -o allow_other
posix_through vufsd "vufsd vufsd:auto gluster" -q
finish
echo "   vufsd: $((SECONDS - t)) s"

SHARE=$GMNT/qemu; mkdir "$SHARE"; rm -f "$SOCK"; t=$SECONDS
start_qemu_virtiofsd -o cache=auto -o xattr
mount_backend -o allow_other
posix_through qemu "qemu qemu:auto gluster" -q
unmount_peer
wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
rm -f "$SOCK"
echo "   QEMU's virtiofsd: $((SECONDS - t)) s"

echo "== vufsd against QEMU's virtiofsd on the volume"
"$VUFS_ROOT/tests/posix/compare.sh" "$SCRATCH/posix-qemu.txt" "$SCRATCH/posix-vufsd.txt" qemu ||
  fail "vufsd's results differ from QEMU virtiofsd's on GlusterFS"

# --- 2. a brick killed in the middle of writes ---
N=300 KILL_AFTER=100
mkdir "$SCRATCH/ref"
for i in $(seq $N); do head -c 65536 /dev/urandom >"$SCRATCH/ref/f$i"; done
SHARE=$GMNT/writes; mkdir "$SHARE"; t=$SECONDS
start_vufsd --cache=auto --xattr
mount_backend
brick2_pid=$(pgrep -f -- "glusterfsd .*--brick-name $B2( |$)")
[ -n "$brick2_pid" ] || { gl volume status "$VOL"; fail "no glusterfsd for $B2"; }
for i in $(seq $N); do
  cp "$SCRATCH/ref/f$i" "$MNT/f$i" || fail "writing f$i through vufs-mount failed"
  if [ "$i" -eq $KILL_AFTER ]; then
    kill -9 "$brick2_pid"
    wait_for 10 bash -c "! kill -0 $brick2_pid 2>/dev/null" || fail "brick 2 (pid $brick2_pid) did not die"
    echo "brick 2 (glusterfsd pid $brick2_pid) killed after file $i"
  fi
done
kill -0 "$brick2_pid" 2>/dev/null && fail "brick 2 is running again before the restart"
bad=0
for i in $(seq $N); do
  cmp -s "$SCRATCH/ref/f$i" "$MNT/f$i" || { echo "f$i differs through vufs-mount"; bad=$((bad + 1)); }
  cmp -s "$SCRATCH/ref/f$i" "$SHARE/f$i" || { echo "f$i differs on the gluster mount"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || fail "$bad reads differ after the brick was killed"
echo "all $N files read back byte for byte through vufs-mount and on the gluster mount with brick 2 down ($((SECONDS - t)) s)"
finish

pending=$(gl volume heal "$VOL" info | awk '/^Number of entries:/ { n += $4 } END { print n + 0 }')
echo "heal info with brick 2 down: $pending entries pending"
[ "$pending" -gt 0 ] || fail "no heal entries pending after writing with a brick down"
gl volume start "$VOL" force || { gluster_log; fail "volume start force (brick restart) failed"; }
wait_for 30 bash -c "pgrep -f -- 'glusterfsd .*--brick-name $B2( |\$)' >/dev/null" || fail "brick 2 did not restart"
heal_start=$SECONDS
healed=
for _ in $(seq 60); do
  gl volume heal "$VOL" >/dev/null 2>&1    # fails while the self-heal daemon is not connected yet: try again
  info=$(gl volume heal "$VOL" info 2>&1)
  if [ "$(grep -c '^Number of entries: 0$' <<<"$info")" -eq 2 ] && [ "$(grep -c '^Status: Connected' <<<"$info")" -eq 2 ]; then
    healed=1; break
  fi
  sleep 2
done
[ -n "$healed" ] || { echo "$info"; fail "heal info did not reach 0 entries within 120 s"; }
echo "healed: heal info shows 0 entries on both bricks $((SECONDS - heal_start)) s after the restart"
count=$(find "$B2/writes" -maxdepth 1 -type f -name 'f*' | wc -l)
[ "$count" -eq $N ] || fail "brick 2 holds $count files of $N after the heal"
for i in $(seq $N); do
  cmp -s "$SCRATCH/ref/f$i" "$B2/writes/f$i" || { echo "f$i differs on healed brick 2"; bad=$((bad + 1)); }
  cmp -s "$SCRATCH/ref/f$i" "$B1/writes/f$i" || { echo "f$i differs on brick 1"; bad=$((bad + 1)); }
done
[ $bad -eq 0 ] || fail "$bad brick files differ after the heal"
echo "the healed brick 2 and brick 1 hold all $N files with their bytes"
echo "gluster_host: $((SECONDS - start)) s after glusterd answered"
