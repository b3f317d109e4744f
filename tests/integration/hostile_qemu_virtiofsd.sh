#!/usr/bin/env bash
# Runs the hostile VMM+guest suite (build/vufs-hostile) against QEMU 7.2's C virtiofsd and against vufsd (plain
# build, default namespace sandbox and seccomp filter) with the same features on (xattrs, POSIX locks), and
# reports them side by side: a table in this log and build/hostile-report.md, which also has the Rust virtiofsd's
# column when hostile_rust_virtiofsd.sh ran with this build of vufs-hostile. Passes when the suite ran to the end
# against both; the verdicts themselves are the report, not this test's result (hostile_vufsd.sh holds vufsd to
# every check).
# timeout: 600
# extended: a report on the peers (vufsd itself is held to every check by hostile_vufsd.sh)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hostile_lib.sh"

PLAIN_BUILD=${VUFS_BUILD:-$PWD/build}
QEMU_VIRTIOFSD=/usr/lib/qemu/virtiofsd
[ -x "$QEMU_VIRTIOFSD" ] || skip "QEMU's virtiofsd is not installed"
[ -x "$PLAIN_BUILD/vufsd" ] || skip "$PLAIN_BUILD/vufsd is not built"
[ "$(id -u)" = 0 ] || skip "QEMU's virtiofsd sandbox and the device-node checks need root"

VUFSD_RES=$SCRATCH/results.vufsd QEMU_RES=$SCRATCH/results.qemu
hostile_run vufsd "$VUFSD_RES" "$PLAIN_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --xattr --posix-lock --flock
hostile_run qemu "$QEMU_RES" "$QEMU_VIRTIOFSD" --socket-path="$SOCK" -o source="$SHARE" -o xattr -o posix_lock -o flock

n=$("$HOSTILE" --list | wc -l)
[ "$(wc -l < "$VUFSD_RES")" -eq "$n" ] || fail "the suite did not run to the end against vufsd"
[ "$(wc -l < "$QEMU_RES")" -eq "$n" ] || fail "the suite did not run to the end against QEMU's virtiofsd"

hostile_save vufsd "$VUFSD_RES" vufsd vufsd \
  "\`$("$PLAIN_BUILD/vufsd" -V 2>&1 | head -1)\`, default sandbox (namespaces) and seccomp filter, \`--xattr --posix-lock --flock\`"
hostile_save qemu "$QEMU_RES" "QEMU virtiofsd" "QEMU's virtiofsd" \
  "\`$("$QEMU_VIRTIOFSD" --version 2>&1 | head -1)\`, default sandbox and seccomp, \`-o xattr -o posix_lock -o flock\`"
hostile_report || fail "no report written"
echo
cat "$HOSTILE_REPORT"
echo
why=$(hostile_host_intact) || fail "outside the share: $why"
