#!/usr/bin/env bash
# vufsd --posix-acl through vufs-mount gives what the host gives on a local directory: an ACL entry grants one
# user and denies another, default ACLs are inherited at creation (instead of the umask, which applies
# otherwise), chmod rewrites the mask, S_ISGID goes when a caller outside the file's group sets an access ACL and
# stays for a member by a supplementary group. Without --posix-acl ACLs are refused; --posix-acl implies --xattr
# (as in virtiofsd) and an explicit --no-xattr with it is refused.
# timeout: 120
. "$(dirname "$0")/lib.sh"
"$VUFS_ROOT/scripts/deps.sh" acl >/dev/null 2>&1 || true
command -v setfacl >/dev/null || skip "setfacl is not installed (scripts/deps.sh acl)"
command -v setpriv >/dev/null || skip "setpriv is not installed"
chmod 755 "$SCRATCH"
ALICE=4001 BOB=4002 GROUP=4100

as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"; }
as_member() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --groups="$GROUP" -- "$@"; }
can() { "$@" >/dev/null 2>&1 && echo yes || echo no; }
acl_of() { for f in "$@"; do echo "== $f $(stat -c '%a %u:%g' "$f")"; getfacl -c "$f" 2>&1; done; }

# The same operations in directory $1 (the mount or a local directory); prints what callers see.
acl_ops() (
  cd "$1" || exit 1
  echo secret > granted; chmod 0640 granted; setfacl -m u:$ALICE:r granted
  echo "grant: alice $(can as $ALICE cat granted), bob $(can as $BOB cat granted)"
  echo open > denied; chmod 0644 denied; setfacl -m u:$BOB:- denied
  echo "deny: alice $(can as $ALICE cat denied), bob $(can as $BOB cat denied)"
  mkdir inherit; setfacl -d -m u:$ALICE:rwx inherit
  (umask 077; echo x > inherit/file; mkdir inherit/sub; mknod inherit/fifo p)
  echo "inherited: alice writes $(can as $ALICE sh -c 'echo y >> inherit/file')," \
       "bob writes $(can as $BOB sh -c 'echo y >> inherit/file')"
  (umask 027; touch plain; mkdir plaind)
  echo x > masked; setfacl -m u:$ALICE:rw masked; chmod 0640 masked
  echo "mask: alice writes $(can as $ALICE sh -c 'echo y >> masked')"
  touch outsider member; chown $ALICE:$GROUP outsider member; chmod 2770 outsider member
  as $ALICE setfacl -m u:$BOB:r outsider
  as_member $ALICE setfacl -m u:$BOB:r member
  acl_of granted denied inherit inherit/file inherit/sub inherit/fifo plain plaind masked outsider member
)

start_vufsd --posix-acl
mount_backend -o allow_other
grep -q "flags" "$SCRATCH/backend.log" || fail "no INIT in vufsd's log"
mkdir "$SCRATCH/native"
acl_ops "$SCRATCH/native" >"$SCRATCH/native.txt" || fail "the operations failed on the host"
acl_ops "$MNT" >"$SCRATCH/mount.txt" || fail "the operations failed through the mount"
cat "$SCRATCH/mount.txt"
diff -u "$SCRATCH/native.txt" "$SCRATCH/mount.txt" || fail "ACLs through the mount differ from the host's"
grep -q "grant: alice yes, bob no" "$SCRATCH/mount.txt" || fail "an ACL entry did not grant, or granted too much"
grep -q "deny: alice yes, bob no" "$SCRATCH/mount.txt" || fail "an ACL entry did not deny"
grep -q "== outsider 770" "$SCRATCH/mount.txt" || fail "S_ISGID stayed for a caller outside the group"
grep -q "== member 2770" "$SCRATCH/mount.txt" || fail "S_ISGID went for a member of the group"
acl_of "$SHARE/inherit/file" 2>/dev/null | grep -q "^user:$ALICE:rwx" || fail "the default ACL is not on the host's file"
finish
echo "--posix-acl: same as the host ($(grep -c '^==' "$SCRATCH/mount.txt") files compared)"

rm -rf "${SHARE:?}"/*
touch "$SHARE/f"
start_vufsd --xattr
mount_backend -o allow_other
setfacl -m u:$ALICE:r "$MNT/f" 2>/dev/null && fail "an ACL was set without --posix-acl"
[ "$(getfacl -c "$MNT/f" | grep -c "^user:$ALICE")" = 0 ] || fail "an ACL shows without --posix-acl"
finish
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --posix-acl --no-xattr 2>"$SCRATCH/err" &&
  fail "--posix-acl with --no-xattr was accepted"
grep -q "needs extended attributes" "$SCRATCH/err" || fail "no reason given for refusing --posix-acl --no-xattr"
echo "without --posix-acl: refused; with --no-xattr: $(cat "$SCRATCH/err")"
