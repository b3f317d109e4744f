#!/usr/bin/env bash
# vufsd --security-label through vufs-mount: INIT agrees FUSE_SECURITY_CTX with the host kernel, which then ends
# every CREATE, MKDIR, SYMLINK and MKNOD with a security-context extension; vufsd decodes each (with no LSM on
# this host the extension holds no context, so nothing is labelled: labels themselves are proved with crafted
# requests in test_fuse_proto). Without --security-label the kernel sends no extension.
# timeout: 60
. "$(dirname "$0")/lib.sh"

case ",$(cat /sys/kernel/security/lsm 2>/dev/null)," in
  *,selinux,*|*,smack,*) echo "note: an LSM that labels files is active here; its labels are not checked" ;;
esac
start_vufsd --security-label --log-level=debug
mount_backend
touch "$MNT/f" && mkdir "$MNT/d" && ln -s f "$MNT/l" && mknod "$MNT/p" p || fail "creating through the mount"
[ -f "$SHARE/f" ] && [ -d "$SHARE/d" ] && [ -L "$SHARE/l" ] && [ -p "$SHARE/p" ] || fail "the nodes are not on the host"
finish
for op in 35 9 6 8; do
  grep -q "opcode $op: 8 bytes of extensions, security context none" "$SCRATCH/backend.log" ||
    { grep extensions "$SCRATCH/backend.log"; fail "opcode $op came without a decoded security-context extension"; }
done
flags=$(sed -n 's/.*agreed 7\.[0-9]*, flags \(0x[0-9a-f]*\),.*/\1/p' "$SCRATCH/backend.log" | head -1)
(( ${flags:-0} >> 32 & 1 )) || fail "FUSE_SECURITY_CTX (flags bit 32) was not agreed (flags ${flags:-none})"
echo "--security-label: CREATE, MKDIR, SYMLINK, MKNOD each carried an empty context extension, decoded"

rm -rf "${SHARE:?}"/*
start_vufsd --log-level=debug
mount_backend
touch "$MNT/f" && mkdir "$MNT/d" || fail "creating through the mount without --security-label"
finish
grep -q "extensions" "$SCRATCH/backend.log" && fail "extensions came without --security-label"
echo "without --security-label: no extensions"
