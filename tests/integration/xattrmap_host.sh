#!/usr/bin/env bash
# vufsd --xattrmap through vufs-mount: a guest's security.selinux lands on the host under the name the rules give
# (user.virtiofs.security.selinux), reads back, lists and is removed under the guest's name; listings show guest
# names only (the host's own security.* and the prefixed names are hidden), the guest may not name the target
# prefix itself; -o xattrmap=:map::P: prefixes every name; bad rules stop vufsd with a message naming the rule.
# timeout: 120
. "$(dirname "$0")/lib.sh"
"$VUFS_ROOT/scripts/deps.sh" acl >/dev/null 2>&1 || true
command -v setfattr >/dev/null || skip "setfattr is not installed (scripts/deps.sh acl)"

hostval() { getfattr --absolute-names --only-values -n "$1" "$2" 2>/dev/null; }
names() { getfattr -d -m - --absolute-names "$1" 2>/dev/null | sed -n 's/=.*//p' | grep -v '^#' | sort | tr '\n' ' '; }

touch "$SHARE/f"
setfattr -n security.hostonly -v h "$SHARE/f" || skip "the host's file system takes no security.* xattrs"
start_vufsd --xattrmap="/prefix/all/security./user.virtiofs./
  /bad/server//security./
  /bad/client/user.virtiofs.//
  /ok/all///"
mount_backend
setfattr -n security.selinux -v system_u:object_r:guest_t:s0 "$MNT/f" || fail "setting security.selinux through the mount"
[ "$(hostval user.virtiofs.security.selinux "$SHARE/f")" = system_u:object_r:guest_t:s0 ] ||
  fail "security.selinux is not user.virtiofs.security.selinux on the host"
hostval security.selinux "$SHARE/f" >/dev/null && fail "the guest's label reached the host's security.selinux"
[ "$(getfattr --only-values -n security.selinux "$MNT/f")" = system_u:object_r:guest_t:s0 ] ||
  fail "security.selinux does not read back through the mount"
setfattr -n user.plain -v v "$MNT/f" && [ "$(hostval user.plain "$SHARE/f")" = v ] || fail "user.plain is not passed"
[ "$(names "$MNT/f")" = "security.selinux user.plain " ] || fail "the mount lists '$(names "$MNT/f")'"
setfattr -n user.virtiofs.x -v x "$MNT/f" 2>"$SCRATCH/err" && fail "the guest set the target prefix itself"
grep -q "not permitted" "$SCRATCH/err" || fail "naming the target prefix: $(cat "$SCRATCH/err"), not EPERM"
getfattr -n security.hostonly "$MNT/f" >/dev/null 2>&1 && fail "the host's own security.hostonly is visible"
setfattr -x security.selinux "$MNT/f" || fail "removing security.selinux through the mount"
hostval user.virtiofs.security.selinux "$SHARE/f" >/dev/null && fail "removal did not reach the host's name"
echo "rules: host has $(names "$SHARE/f"); mount shows $(names "$MNT/f")"
finish

rm -f "$SHARE/f"; touch "$SHARE/g"
setfattr -n user.hosts -v h "$SHARE/g"
start_vufsd -o xattrmap=:map::user.virtiofs.:
mount_backend
setfattr -n user.mine -v m "$MNT/g" && setfattr -n trusted.overlay.opaque -v y "$MNT/g" || fail "setting through the mount"
[ "$(names "$SHARE/g")" = "user.hosts user.virtiofs.trusted.overlay.opaque user.virtiofs.user.mine " ] ||
  fail "the host has '$(names "$SHARE/g")'"
[ "$(names "$MNT/g")" = "trusted.overlay.opaque user.mine " ] || fail "the mount lists '$(names "$MNT/g")'"
echo ":map: host has $(names "$SHARE/g"); mount shows $(names "$MNT/g")"
finish

"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --xattrmap=":ok:all::: :bogus:all:::" 2>"$SCRATCH/err" &&
  fail "bad rules were accepted"
grep -q "rule 2: unknown type 'bogus'" "$SCRATCH/err" || fail "the message does not name the rule: $(cat "$SCRATCH/err")"
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" -o xattrmap=:map::x.:,no_xattr 2>/dev/null &&
  fail "--xattrmap with no_xattr was accepted"
echo "bad rules: $(cat "$SCRATCH/err")"
