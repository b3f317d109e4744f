#!/usr/bin/env bash
# O_NOATIME through vufs-mount on a share mounted strictatime (every read updates atime): by default vufsd drops
# the guest's O_NOATIME when it opens the host file, as virtiofsd does, so a read with O_NOATIME still moves the
# host file's atime; with --preserve-noatime it reaches the host and the atime stays. A read without O_NOATIME
# moves it in both (the read reached the host, atime is observable).
# timeout: 120
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (mounts)"
mount -t tmpfs -o strictatime,size=16m vufs-noatime "$SHARE" || skip "cannot mount a tmpfs"
trap 'umount -l "$SHARE"; cleanup' EXIT
OLD=978307200   # 2001-01-01 00:00:00 UTC

atime_after_read() {   # file [dd flag]: the host atime after one read through the mount, from an old atime
  touch -a -d @$OLD "$SHARE/$1"
  dd if="$MNT/$1" of=/dev/null ${2:+iflag=$2} status=none || fail "read of $1 ${2:-} failed"
  stat -c %X "$SHARE/$1"
}

for mode in default preserve; do
  opts=(--cache=never)
  [ $mode = preserve ] && opts+=(--preserve-noatime)
  start_vufsd "${opts[@]}"
  mount_backend
  echo data >"$SHARE/f"
  plain=$(atime_after_read f)
  noatime=$(atime_after_read f noatime)
  echo "$mode: atime after a plain read $plain, after an O_NOATIME read $noatime (was $OLD)"
  [ "$plain" != $OLD ] || fail "$mode: a plain read did not move the host atime"
  if [ $mode = default ]; then
    [ "$noatime" != $OLD ] || fail "default: O_NOATIME reached the host (atime kept)"
  else
    [ "$noatime" = $OLD ] || fail "--preserve-noatime: O_NOATIME did not reach the host (atime moved)"
  fi
  finish
done
echo ok
