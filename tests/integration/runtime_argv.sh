#!/usr/bin/env bash
# vufsd started with the exact command lines container runtimes give virtiofsd (the plain build, its default
# confinement), each serving a host mount through vufs-mount: files read, written and listed both ways.
#   Kata Containers (virtio_fs_extra_args, cache=auto): --thread-pool-size=1 -o announce_submounts
#   other runtimes: -o announce_submounts -o xattr -o sandbox=chroot -o modcaps=+sys_admin -o cache=always
#   QEMU virtiofsd's spellings: -o thread_pool_size=4, -o modcaps=+sys_admin:-mknod
# And --readonly (-o readonly): reads work, every change (create, write, truncate, mkdir, rename, unlink,
# chmod, setxattr) fails with EROFS and the host directory is unchanged. --inode-file-handles=never|prefer|mandatory
# are served (as in virtiofsd 1.14); a mode it does not have is refused with a message. virtiofsd 1.14's other
# spellings: --socket=PATH, --posix-acl=auto|always|never, --security-label=auto, --no-announce-submounts.
# timeout: 120
. "$(dirname "$0")/lib.sh"
BUILD=${VUFS_BUILD:-$PWD/build}

serve() {   # vufsd arguments after the socket and the directory
  "$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" "$@" >"$SCRATCH/backend.log" 2>&1 &
  BACKEND_PID=$!
  wait_for 10 test -S "$SOCK" || { cat "$SCRATCH/backend.log"; fail "vufsd $* did not start"; }
  mount_backend
}

works() {   # label
  echo "from the host" >"$SHARE/h.txt"
  [ "$(cat "$MNT/h.txt")" = "from the host" ] || fail "$1: read through the mount"
  echo "from the mount" >"$MNT/m.txt" && [ "$(cat "$SHARE/m.txt")" = "from the mount" ] || fail "$1: write"
  ls "$MNT" | grep -qx m.txt || fail "$1: listing"
  rm -f "$MNT/m.txt" "$MNT/h.txt" && [ ! -e "$SHARE/m.txt" ] || fail "$1: remove"
  finish
  echo "$1: ok"
}

serve --cache=auto --thread-pool-size=1 -o announce_submounts
works "Kata (--thread-pool-size=1 -o announce_submounts)"
serve -o announce_submounts -o xattr -o sandbox=chroot -o modcaps=+sys_admin -o cache=always
works "runtime (-o announce_submounts -o xattr -o sandbox=chroot -o modcaps=+sys_admin -o cache=always)"
serve -o thread_pool_size=4 -o modcaps=+sys_admin:-mknod --inode-file-handles=never
works "QEMU virtiofsd spellings (-o thread_pool_size=4 -o modcaps=+a:-b, --inode-file-handles=never)"

"$BUILD/vufsd" --socket="$SOCK" --shared-dir="$SHARE" --posix-acl=auto --security-label=auto \
  --no-announce-submounts >"$SCRATCH/backend.log" 2>&1 &
BACKEND_PID=$!
wait_for 10 test -S "$SOCK" || { cat "$SCRATCH/backend.log"; fail "--socket= did not start"; }
mount_backend
works "virtiofsd 1.14 spellings (--socket=, --posix-acl=auto, --security-label=auto, --no-announce-submounts)"
serve --posix-acl=never --security-label=never -o no_announce_submounts
works "--posix-acl=never --security-label=never -o no_announce_submounts"
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --posix-acl=sometimes >"$SCRATCH/refused.log" 2>&1 &&
  fail "--posix-acl=sometimes was accepted"

for mode in prefer mandatory; do
  serve --inode-file-handles=$mode
  works "--inode-file-handles=$mode"
done
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --inode-file-handles=sometimes >"$SCRATCH/refused.log" 2>&1 &&
  fail "--inode-file-handles=sometimes was accepted"
grep -q "inode-file-handles" "$SCRATCH/refused.log" || { cat "$SCRATCH/refused.log"; fail "a bad mode: no reason given"; }
echo "--inode-file-handles=sometimes: refused with a reason"

echo original >"$SHARE/ro.txt"; mkdir "$SHARE/dir"; setfattr -n user.x -v 1 "$SHARE/ro.txt" 2>/dev/null || true
before=$(cd "$SHARE" && find . -printf '%p %s %m\n' | sort)
serve --readonly --xattr
[ "$(cat "$MNT/ro.txt")" = original ] || fail "readonly: read"
erofs() {   # what command...
  local what=$1; shift
  local out; out=$("$@" 2>&1) && fail "readonly: $what succeeded"
  echo "$out" | grep -qi "read-only file system" || fail "readonly: $what failed otherwise: $out"
}
erofs create sh -c "echo x >'$MNT/new.txt'"
erofs write sh -c "echo x >>'$MNT/ro.txt'"
erofs truncate truncate -s 0 "$MNT/ro.txt"
erofs mkdir mkdir "$MNT/d2"
erofs rename mv "$MNT/ro.txt" "$MNT/moved.txt"
erofs unlink rm "$MNT/ro.txt"
erofs rmdir rmdir "$MNT/dir"
erofs chmod chmod 600 "$MNT/ro.txt"
if command -v setfattr >/dev/null; then erofs setxattr setfattr -n user.y -v 2 "$MNT/ro.txt"; fi
[ "$(cd "$SHARE" && find . -printf '%p %s %m\n' | sort)" = "$before" ] || fail "readonly: the host directory changed"
finish
echo "--readonly: reads work, every change is EROFS, the host directory unchanged"
