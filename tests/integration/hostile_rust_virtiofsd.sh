#!/usr/bin/env bash
# Runs the hostile VMM+guest suite (build/vufs-hostile) against the Rust virtiofsd (Debian sid's, 1.14, through
# scripts/peers/virtiofsd-rust.sh, which fetches it on the first run) in its default confinement (namespace sandbox,
# seccomp=kill) with xattrs on -- it has no POSIX or flock lock support to turn on -- and adds its column to
# build/hostile-report.md beside vufsd's and QEMU's virtiofsd's (those come from hostile_qemu_virtiofsd.sh with this
# build of vufs-hostile). Passes when the suite ran to the end; its failures are findings about the peer, not ours.
# Skips when the Debian archive cannot provide the package (RUST_VIRTIOFSD=PATH runs another virtiofsd binary).
# Takes about as long as one backend's run of the suite in hostile_qemu_virtiofsd.sh (~2 minutes here).
# timeout: 600
# extended: a report on the peers (vufsd itself is held to every check by hostile_vufsd.sh)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hostile_lib.sh"

RUST_VIRTIOFSD=${RUST_VIRTIOFSD:-${VUFS_ROOT:-$PWD}/scripts/peers/virtiofsd-rust.sh}
[ "$(id -u)" = 0 ] || skip "the Rust virtiofsd's sandbox, its package cache and the device-node checks need root"
version=$("$RUST_VIRTIOFSD" --version 2>"$SCRATCH/fetch.log" | head -1)
[ -n "$version" ] || skip "no Rust virtiofsd: $(tail -n 1 "$SCRATCH/fetch.log")"
[[ $version == virtiofsd\ * ]] || fail "$RUST_VIRTIOFSD is not a virtiofsd (--version: $version)"
echo "peer: $version"

RUST_RES=$SCRATCH/results.rust
hostile_run rust "$RUST_RES" "$RUST_VIRTIOFSD" --socket-path="$SOCK" --shared-dir="$SHARE" --xattr

n=$("$HOSTILE" --list | wc -l)
[ "$(wc -l < "$RUST_RES")" -eq "$n" ] || fail "the suite did not run to the end against the Rust virtiofsd"
[ "$(grep -c 'did not create its socket' "$RUST_RES")" -lt "$n" ] ||
  fail "the Rust virtiofsd never started (its log tails are above)"
hostile_save rust "$RUST_RES" "Rust virtiofsd" "Rust virtiofsd" \
  "\`$version\` (Debian sid), default sandbox (namespaces) and seccomp, \`--xattr\` (it implements no POSIX or flock locks)"
hostile_report || fail "no report written"
echo
cat "$HOSTILE_REPORT"
echo
why=$(hostile_host_intact) || fail "outside the share: $why"
