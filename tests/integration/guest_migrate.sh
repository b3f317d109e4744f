#!/usr/bin/env bash
# Live migration of a real guest (Debian's 6.1 kernel, QEMU 11.1.3 TCG, vhost-user-fs-pci) from one vufsd to
# another on the same share (tests/vm/migrate.sh): the guest writes and fsyncs a counter every ~0.2 s through a
# descriptor held open across the migration, and in file-handles mode also keeps a file it unlinked open, writing
# and reading it back each tick. The migration must complete, the destination run on, the counter be whole
# (1..N, no gap, no repeat) and the guest see no error. Both vufsd (sanitizer build) must exit cleanly with no
# sanitizer report; the source's log must show the state saved, the destination's the state loaded.
# find-paths runs the sanitizer build unconfined; file-handles the plain build in its default confinement
# (namespace sandbox, seccomp=kill), as users run it: open_by_handle_at needs CAP_DAC_READ_SEARCH kept and allowed.
# Third case, "refused": the destination vufsd is started without --posix-lock while the guest agreed POSIX locks
# with the source, so it must refuse the state at CHECK_DEVICE_STATE; the destination QEMU then exits after the
# source already said "completed", the harness resumes the source (QMP cont, as a VMM must) and the guest must
# go on there with its counter whole: a state the destination cannot load leaves the source running.
# Fourth case, "dirty": find-paths with --cache=always and migrate.sh's DIRTY_CHECK: the guest reads a new 1 MiB
# file each tick and at the end reads them all again from its page cache; pages vufsd filled during the pre-copy
# reach the destination only if vufsd logged them dirty (a backend that logs nothing leaves them stale there).
# VUFS_MIGRATE_MODES: the cases to run (default all four; each boot pair takes ~20 s here). Then the file-handles
# migration (with VUFS_EXTENDED=1, make check-extended, find-paths too) runs between two Rust virtiofsd 1.14
# (scripts/peers), the reference, and the figures of both are printed side by side ("figures" lines); the
# reference's own failure is reported, not counted (VUFS_MIGRATE_RUST=0 leaves it out).
# timeout: 600
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-migrate
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
san_env
VUFSD=${VUFS_SAN_BUILD:-$VUFS_ROOT/build-san}/vufsd PLAIN=${VUFS_BUILD:-$VUFS_ROOT/build}/vufsd
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] || fail "build first: make SAN=1 all"
[ "$(id -u)" = 0 ] || skip "must run as root (file handles need CAP_DAC_READ_SEARCH)"
"$VUFS_ROOT/scripts/peers/qemu111.sh" --version >/dev/null 2>&1 || skip "QEMU 11.1 unavailable (scripts/peers/qemu111.sh)"
modes=${VUFS_MIGRATE_MODES:-file-handles find-paths refused dirty}

problems=()
for mode in $modes; do
  share=$TESTDIR/share-$mode
  mkdir -p "$share"
  unlinked=0
  [ "$mode" = file-handles ] && unlinked=1
  pids=()
  daemon=("$VUFSD" --sandbox=none --seccomp=none)
  [ "$mode" = file-handles ] && daemon=("$PLAIN")
  how=$mode expect= cache=auto dirty=0
  [ "$mode" = refused ] && how=find-paths expect=refused
  [ "$mode" = dirty ] && how=find-paths cache=always dirty=1
  for side in src dst; do
    extra=()
    [ "$mode" = refused ] && [ $side = src ] && extra=(--posix-lock)
    "${daemon[@]}" --socket-path="$TESTDIR/$mode-$side.sock" --shared-dir="$share" \
      --cache=$cache --migration-mode="$how" "${extra[@]}" >"$TESTDIR/$mode-$side.log" 2>&1 &
    pids+=($!)
  done
  CLEANUP_CMDS+=("kill ${pids[*]} 2>/dev/null")
  for side in src dst; do
    for _ in $(seq 100); do [ -S "$TESTDIR/$mode-$side.sock" ] && break; sleep 0.1; done
  done
  rc=0
  EXPECT=$expect UNLINKED=$unlinked DIRTY_CHECK=$dirty RUN=$TESTDIR/run-$mode KEEP=1 "$VUFS_ROOT/tests/vm/migrate.sh" \
    "$TESTDIR/$mode-src.sock" "$TESTDIR/$mode-dst.sock" "$share" || rc=$?
  echo "== $mode: migrate.sh exit $rc"
  [ $rc -eq 3 ] && skip "QEMU 11.1 or the guest kernel could not be had"
  [ $rc -eq 0 ] || problems+=("$mode: the guest did not migrate whole (migrate.sh exit $rc)")
  for i in 0 1; do
    side=$([ $i = 0 ] && echo src || echo dst)
    st=0
    for _ in $(seq 150); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      kill "${pids[$i]}"; problems+=("$mode: the $side vufsd still ran after its QEMU left")
    fi
    wait "${pids[$i]}" || st=$?
    [ $st -eq 0 ] || problems+=("$mode: the $side vufsd exited with status $st")
    if sanitizer_report "$TESTDIR/$mode-$side.log" >/dev/null; then
      cat "$TESTDIR/$mode-$side.log"; problems+=("$mode: sanitizer report in the $side vufsd's log")
    fi
  done
  grep -q 'device state: .* bytes saved' "$TESTDIR/$mode-src.log" ||
    problems+=("$mode: the source vufsd did not save its state")
  if [ "$mode" = refused ]; then
    grep -q 'is not one this vufsd can serve' "$TESTDIR/$mode-dst.log" ||
      problems+=("$mode: the destination vufsd did not say why it refused the state")
    grep -q 'device state: .* bytes loaded' "$TESTDIR/$mode-dst.log" &&
      problems+=("$mode: the destination vufsd loaded a state it cannot serve")
  else
    grep -q 'device state: .* bytes loaded' "$TESTDIR/$mode-dst.log" ||
      problems+=("$mode: the destination vufsd did not load a state")
  fi
  if [ "$mode" = dirty ]; then
    line=$(tr -d '\r' <"$TESTDIR/run-$mode/dst.console" 2>/dev/null | grep -a -m1 '^GUEST-DIRTY-CHECK')
    echo "== dirty: ${line:-no GUEST-DIRTY-CHECK line}"
    [[ $line == *stale=0* ]] || problems+=("dirty: pages filled during the pre-copy: ${line:-not checked}")
  fi
  grep -h 'migration: state\|device state' "$TESTDIR/$mode-src.log" "$TESTDIR/$mode-dst.log"
  echo "figures vufsd $mode: $(grep '^figures:' "$TESTDIR/run-$mode/qmp.txt" 2>/dev/null | sed 's/^figures: //')"
done
# The reference: Rust virtiofsd migrating the same guest (informational; its failure is reported, not ours).
rust_modes=file-handles; [ "${VUFS_EXTENDED:-0}" = 1 ] && rust_modes="find-paths file-handles"
if [ "${VUFS_MIGRATE_RUST:-1}" = 1 ] && "$VUFS_ROOT/scripts/peers/virtiofsd-rust.sh" --version >/dev/null 2>&1; then
  for mode in $rust_modes; do
    case " $modes " in *" $mode "*) ;; *) continue ;; esac
    share=$TESTDIR/rust-$mode
    mkdir -p "$share"
    for side in src dst; do
      "$VUFS_ROOT/scripts/peers/virtiofsd-rust.sh" --socket-path="$TESTDIR/rust-$mode-$side.sock" \
        --shared-dir="$share" --cache=auto --migration-mode="$mode" >"$TESTDIR/rust-$mode-$side.log" 2>&1 &
      CLEANUP_CMDS+=("kill $! 2>/dev/null")
    done
    sleep 2
    rc=0
    UNLINKED=$([ "$mode" = file-handles ] && echo 1 || echo 0) RUN=$TESTDIR/run-rust-$mode KEEP=1 \
      "$VUFS_ROOT/tests/vm/migrate.sh" "$TESTDIR/rust-$mode-src.sock" "$TESTDIR/rust-$mode-dst.sock" "$share" || rc=$?
    echo "figures rust virtiofsd $mode (migrate.sh exit $rc): $(grep '^figures:' "$TESTDIR/run-rust-$mode/qmp.txt" 2>/dev/null | sed 's/^figures: //')"
  done
fi
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  for f in "$TESTDIR"/*.log; do echo "--- $f"; tail -n 20 "$f"; done
  exit 1
fi
echo "guest_migrate: ok"
