#!/usr/bin/env bash
# FUSE 7.45 through vufs-mount on vufsd (the host kernel plays the guest's): the session agrees the kernel's minor
# up to 45 and FUSE_CREATE_SUPP_GROUP; statx(STATX_BTIME) through the mount gives the host's birth time
# (FUSE_STATX); a caller who has a setgid directory's group only as a supplementary group creates files and
# directories there with the result a native run gives (S_ISGID kept, the directory's group), a caller outside
# it gets S_ISGID stripped as natively; copy_file_range through the mount copies (COPY_FILE_RANGE_64).
# timeout: 120
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (runs callers as other users)"
chmod 755 "$SCRATCH"
start_vufsd --xattr
mount_backend -o allow_other

minor=$(sed -n 's/.*agreed 7\.\([0-9]*\),.*/\1/p' "$SCRATCH/backend.log" | head -1)
kernel=$(sed -n 's/.*guest protocol 7\.\([0-9]*\),.*/\1/p' "$SCRATCH/backend.log" | head -1)
[ -n "$minor" ] || { cat "$SCRATCH/backend.log"; fail "no INIT in vufsd's log"; }
want=$((kernel < 45 ? kernel : 45))
[ "$minor" = "$want" ] || fail "agreed 7.$minor with a 7.$kernel kernel (want 7.$want)"
grep -q "backend INIT: protocol 7.$minor," "$SCRATCH/mount.log" ||
  { cat "$SCRATCH/mount.log"; fail "vufs-mount changed the minor"; }
echo "kernel 7.$kernel, agreed 7.$minor"

# FUSE_STATX: the birth time, as the host has it (when its file system keeps one)
echo born > "$SHARE/born"
host_btime=$(stat -c %W "$SHARE/born")
mnt_btime=$(stat -c %W "$MNT/born")
if [ "$host_btime" = 0 ]; then
  echo "the host file system keeps no birth time: only checked that none is invented"
  [ "$mnt_btime" = 0 ] || fail "birth time $mnt_btime through the mount, none on the host"
else
  [ "$mnt_btime" = "$host_btime" ] || fail "birth time $mnt_btime through the mount, $host_btime on the host"
  [ "$(stat -c %.9W "$MNT/born")" = "$(stat -c %.9W "$SHARE/born")" ] || fail "birth time nanoseconds differ"
fi
echo "statx btime: ok ($mnt_btime)"

# FUSE_CREATE_SUPP_GROUP: the same creations natively (in $SCRATCH/native) and through the mount
mkdir -m 755 "$SCRATCH/native"
create_as() {   # dir: as uid 1000 gid 1000 with supplementary group 1002, then uid 1001 gid 1001 with none
  local d=$1
  mkdir "$d/sg" && chgrp 1002 "$d/sg" && chmod 2775 "$d/sg" && chmod 1777 "$d"
  setpriv --reuid=1000 --regid=1000 --groups=1002 /usr/bin/python3 -c '
import os, sys
os.umask(0)
d = sys.argv[1]
os.close(os.open(d + "/sg/member", os.O_CREAT | os.O_WRONLY, 0o2755))
os.mkdir(d + "/sg/memberdir", 0o755)
os.mknod(d + "/sg/membernod", 0o2755 | 0o100000)
' "$d" || fail "creations in $d as a member by a supplementary group"
  setpriv --reuid=1001 --regid=1001 --clear-groups /usr/bin/python3 -c '
import os, sys
os.umask(0)
os.close(os.open(sys.argv[1] + "/sg/outsider", os.O_CREAT | os.O_WRONLY, 0o2755))
' "$d" 2>/dev/null || true   # the directory is not writable for an outsider: EACCES both ways
  for f in member memberdir membernod outsider; do
    [ -e "$d/sg/$f" ] && stat -c "$f %u:%g %a" "$d/sg/$f" || echo "$f absent"
  done
}
native=$(create_as "$SCRATCH/native")
mounted=$(create_as "$MNT")
echo "$mounted"
[ "$native" = "$mounted" ] || { echo "native:"; echo "$native"; fail "creations through the mount differ from native"; }
grep -q "^member 1000:1002 2755$" <<<"$mounted" || fail "the member's file lost S_ISGID or the group"
echo "supplementary group: ok"

# COPY_FILE_RANGE(_64): the kernel's copy_file_range through the mount
/usr/bin/python3 -c '
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
n = os.copy_file_range(src, dst, 1 << 20)
assert n == 5, n
' "$MNT/born" "$MNT/copy" || fail "copy_file_range through the mount"
cmp "$SHARE/born" "$SHARE/copy" || fail "copy_file_range copied something else"
echo "copy_file_range: ok"

finish
