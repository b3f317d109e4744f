#!/usr/bin/env bash
# POSIX ACLs and a security label in a real guest (Debian's 6.1 kernel, QEMU 7.2, TCG) on vufsd (ASan) with
# --posix-acl and --xattrmap (virtiofsd's rule language: the guest's security.* names are stored on the host as
# user.virtiofs.security.*, every other name as it is). Inside, vufs-acl (tests/posix/vufs-acl.c; the busybox guest
# has no setfacl) sets an access ACL that lets uid 1000 read and not write and keeps uid 1001 out, checks both
# with real uids, and a default ACL whose inheritance lets uid 1000 write a file root created under umask 077;
# then it labels a file security.selinux. On the host: the ACLs are the host's own (getfacl shows them), and the
# label is under user.virtiofs.security.selinux with no host security.selinux. The same program through
# vufs-mount on the host first (the host kernel as the guest). vufsd exits 0 with no sanitizer report.
# timeout: 300
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-acl
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
VUFSD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}/vufsd ACLBIN=$VUFS_BUILD/vufs-acl MOUNT=$VUFS_BUILD/vufs-mount
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] && [ -x "$ACLBIN" ] || fail "build first: make all && make SAN=1 all"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils acl attr || fail "cannot install packages"
chmod 711 "$TESTDIR"   # uids 1000 and 1001 reach the mount point through it
LABEL=system_u:object_r:guest_t:s0
RULES=':prefix:all:security.:user.virtiofs.::ok:all:::'
opts=(--sandbox=none --seccomp=none --posix-acl "--xattrmap=$RULES")

host_checks() {   # share label: what the host holds after vufs-acl ran on it
  local share=$1 where=$2
  getfacl -n "$share/acl-file" 2>/dev/null | grep -qx 'user:1000:r--' ||
    { getfacl -n "$share/acl-file"; fail "$where: the host does not hold the access ACL"; }
  getfacl -n "$share/acl-dir/inherits" 2>/dev/null | grep -q '^user:1000:rwx' ||
    { getfacl -n "$share/acl-dir/inherits"; fail "$where: the inherited ACL is not on the host"; }
  [ "$(getfattr --only-values -n user.virtiofs.security.selinux "$share/labelled" 2>/dev/null)" = "$LABEL" ] ||
    { getfattr -d -m - "$share/labelled"; fail "$where: the label is not under user.virtiofs.security.selinux"; }
  getfattr -n security.selinux "$share/labelled" >/dev/null 2>&1 && fail "$where: the label reached security.selinux"
  echo "== $where: the host holds both ACLs, and the label as user.virtiofs.security.selinux"
}

# 1. Through vufs-mount (the host's kernel as the FUSE client).
share=$TESTDIR/share-host mnt=$TESTDIR/mnt SOCK=$TESTDIR/host.sock BACKEND_LOG=$TESTDIR/vufsd-host.log
mkdir -p "$share" "$mnt"
start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" "${opts[@]}" || fail "vufsd did not start"
"$MOUNT" --socket="$SOCK" "$mnt" -f -o allow_other >"$TESTDIR/mount.log" 2>&1 &
mpid=$!
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.2; done
mountpoint -q "$mnt" || { cat "$TESTDIR/mount.log"; fail "vufs-mount did not mount"; }
"$ACLBIN" "$mnt" "$LABEL" | tee "$TESTDIR/host.txt"
rc=${PIPESTATUS[0]}
umount "$mnt"; wait $mpid
[ "$rc" = 0 ] || fail "vufs-acl through vufs-mount"
wait_backend_exit 15 || fail "vufsd did not exit after vufs-mount"
[ "$BACKEND_STATUS" = 0 ] || fail "vufsd $(status_text "$BACKEND_STATUS")"
host_checks "$share" "vufs-mount"

# 2. In the guest.
share=$TESTDIR/share-guest SOCK=$TESTDIR/guest.sock BACKEND_LOG=$TESTDIR/vufsd-guest.log
mkdir -p "$share"
printf 'vufs-acl /mnt %s\necho "VUFS-ACL-EXIT $?"\n' "$LABEL" >"$TESTDIR/guest-acl.sh"
for attempt in 1 2; do
  start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" "${opts[@]}" || fail "vufsd did not start"
  grc=0
  "$GUEST" "$SOCK" "$TESTDIR/guest-acl.sh" "$ACLBIN" >"$TESTDIR/console.txt" 2>"$TESTDIR/guest.err" || grc=$?
  boot_crashed $grc "$TESTDIR/console.txt" && [ $attempt = 1 ] || break
  echo "== the guest kernel died while booting: once more"
  wait_backend_exit 20 || stop_backend 5 || true
done
grep -a '^ACL' "$TESTDIR/console.txt"
[ $grc = 0 ] || { tail -30 "$TESTDIR/console.txt"; cat "$TESTDIR/guest.err"; fail "guest.sh exit $grc"; }
grep -aq '^VUFS-ACL-EXIT 0' "$TESTDIR/console.txt" || fail "vufs-acl failed in the guest"
wait_backend_exit 15 || fail "vufsd still running after the guest powered off"
[ "$BACKEND_STATUS" = 0 ] || fail "vufsd $(status_text "$BACKEND_STATUS") after the guest"
sanitizer_report "$TESTDIR"/vufsd-*.log && fail "sanitizer report"
host_checks "$share" "the 6.1 guest"
echo "guest_acl: ok"
