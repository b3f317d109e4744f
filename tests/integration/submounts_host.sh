#!/usr/bin/env bash
# Submounts: a tmpfs mounted inside the share before vufsd starts and one mounted after it started, in each
# sandbox mode (namespace, chroot, none), served through vufs-mount: a file made on the submount on the host is
# seen through the mount, and a file written through the mount lands on the submount (the host sees it there,
# not in the directory underneath). The share is a shared mount of its own here, as a host that wants later
# mounts seen must make it; on a private one the namespace sandbox sees only the mounts made before it started,
# and says so at start. --announce-submounts is accepted (-o announce_submounts too) and harmless here: the
# host's /dev/fuse client never offers FUSE_SUBMOUNTS, so distinct st_dev values can only show in a virtio-fs
# guest; test_fuse_proto checks the FUSE_ATTR_SUBMOUNT flag on the wire.
# timeout: 240
BUILD=${VUFS_BUILD:-$PWD/build}
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root to mount file systems"

UNDER=$SCRATCH/under PRIV=$SCRATCH/private PRIV_UNDER=$SCRATCH/private-under
mkdir -p "$UNDER" "$PRIV_UNDER" "$SHARE/early" "$SHARE/late" "$PRIV/early" "$PRIV/late"
for d in "$SHARE" "$PRIV"; do
  echo under > "$d/early/underneath"; echo under > "$d/late/underneath"
done
unmount_all() {
  for m in "$SHARE" "$UNDER" "$PRIV" "$PRIV_UNDER"; do umount -R -l "$m" 2>/dev/null; done
  cleanup
}
trap unmount_all EXIT
# UNDER: the share without what is mounted inside it, i.e. the directories under the mount points
for d in "$SHARE:$UNDER" "$PRIV:$PRIV_UNDER"; do
  mount --bind "${d%%:*}" "${d#*:}" && mount --make-private "${d#*:}" || skip "cannot bind-mount"
done
mount --bind "$SHARE" "$SHARE" && mount --make-private "$SHARE" && mount --make-shared "$SHARE" ||
  skip "cannot make the share a shared mount"

# check LABEL ROOT DIR: the submount on ROOT/DIR as seen through the mount and from the host
check() {
  local label=$1 root=$2 d=$3
  wait_for 5 test -e "$MNT/$d/from-host" || fail "$label: $d: the host's file on the submount is not seen"
  [ "$(cat "$MNT/$d/from-host")" = host ] || fail "$label: $d: wrong content"
  [ -e "$MNT/$d/underneath" ] && fail "$label: $d: the guest sees the directory under the mount point"
  echo guest > "$MNT/$d/from-guest" || fail "$label: $d: write through the mount"
  [ "$(cat "$root/$d/from-guest" 2>/dev/null)" = guest ] || fail "$label: $d: the guest's file is not on the submount"
  [ -e "$UNDER/$d/from-guest" ] && fail "$label: $d: the guest's file landed under the mount point"
  return 0
}

for mode in namespace chroot none; do
  mount -t tmpfs -o size=4m tmpfs "$SHARE/early" || fail "mount tmpfs"
  echo host > "$SHARE/early/from-host"
  case $mode in
    namespace) announce=--announce-submounts ;;
    chroot) announce="-o announce_submounts" ;;
    none) announce= ;;
  esac
  # shellcheck disable=SC2086
  start_vufsd --sandbox=$mode $announce
  mount_backend
  check "$mode" "$SHARE" early
  [ -e "$MNT/late/underneath" ] || fail "$mode: late: the directory before the mount"
  mount -t tmpfs -o size=4m tmpfs "$SHARE/late" || fail "mount tmpfs"
  echo host > "$SHARE/late/from-host"
  check "$mode (mounted after start)" "$SHARE" late
  [ -n "$announce" ] && { [ "$(stat -c %d "$MNT/early")" = "$(stat -c %d "$MNT")" ] ||
    echo "note: $mode: the host's FUSE client gave the submount its own st_dev"; }
  grep -q "private mount" "$SCRATCH/backend.log" && fail "$mode: a shared share reported as private"
  finish
  umount "$SHARE/early" "$SHARE/late" || fail "$mode: umount of the submounts"
  echo "$mode: ok"
done

# A share on a private mount: the namespace sandbox shows what was mounted before it started and says that later
# mounts will not be seen; they are not (the documented limit: the host has to make the mount shared).
mount --bind "$PRIV" "$PRIV" && mount --make-private "$PRIV" || fail "private bind"
mount -t tmpfs -o size=4m tmpfs "$PRIV/early" || fail "mount tmpfs"
echo host > "$PRIV/early/from-host"
SHARE=$PRIV start_vufsd --sandbox=namespace
mount_backend
UNDER=$PRIV_UNDER check "namespace, private" "$PRIV" early
grep -q "private mount of the host" "$SCRATCH/backend.log" || { cat "$SCRATCH/backend.log"; fail "no word of the private mount"; }
mount -t tmpfs -o size=4m tmpfs "$PRIV/late" || fail "mount tmpfs"
echo host > "$PRIV/late/from-host"
sleep 1.5 # past the entry timeout of cache=auto
[ -e "$MNT/late/from-host" ] && fail "namespace, private: a later mount was seen after all (update the docs)"
finish
umount "$PRIV/early" "$PRIV/late"
echo "namespace, private share: ok"
echo ok
