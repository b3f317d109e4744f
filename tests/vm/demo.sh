#!/usr/bin/env bash
# `make demo`: share a sample directory with a real Linux guest under QEMU (TCG) through vufsd. The guest lists
# and reads the share, writes a file and a directory and appends to a host file; then the host checks that it
# sees those writes. Exit 0 when everything checks out. Run from the repository root after `make all`.
#   tests/vm/demo.sh
# BACKEND replaces the vufsd command; it is expanded by the shell with $SOCK (socket) and $DIR (shared dir), e.g.
#   BACKEND='/usr/lib/qemu/virtiofsd --socket-path=$SOCK -o source=$DIR -o cache=auto' tests/vm/demo.sh
# Guest options (MEM, SMP, QUEUES, MOUNT_OPTS, ...) pass through to tests/vm/guest.sh.
set -euo pipefail
TESTDIR_PREFIX=vufs-demo
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

say() { printf '== host: %s\n' "$*"; }
fail() { printf '== host: FAILED: %s\n' "$*"; exit 1; }
t0=$SECONDS
DIR=$TESTDIR/share SOCK=$TESTDIR/vufs.sock
export DIR SOCK

if [ -n "${BACKEND:-}" ]; then
  eval "backend=($BACKEND)"
else
  backend=("$VUFS_BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$DIR" --cache=auto)
  [ -x "${backend[0]}" ] || fail "${backend[0]} is not built: run 'make all' first (or set BACKEND=...)"
fi
name=${backend[0]##*/}

say "creating a sample directory $DIR"
mkdir -p "$DIR/docs"
printf 'Hello from the host!\nThis file lives on the host and is read by the guest over virtio-fs.\n' >"$DIR/hello.txt"
printf 'notes, line 1 (host)\nnotes, line 2 (host)\n' >"$DIR/notes.txt"
printf 'A file in a subdirectory.\n' >"$DIR/docs/readme.txt"
(cd "$DIR" && find . -mindepth 1 | sort | sed 's|^\./|   |')

BACKEND_LOG=$TESTDIR/backend.log
say "starting $name on $SOCK (log: $BACKEND_LOG)"
echo "   ${backend[*]}"
start_backend "${backend[@]}" || { tail -n 20 "$BACKEND_LOG" | sed 's/^/   | /'; fail "$name did not start"; }

cat >"$TESTDIR/guest-script.sh" <<'GUEST'
set -e
section() { echo; echo "== guest: $*"; }
section "mounted the host's directory at /mnt (virtiofs, kernel $(uname -r)); ls -la /mnt"
ls -la /mnt
section "cat /mnt/hello.txt"
cat /mnt/hello.txt
section "write a new file: /mnt/from-guest.txt"
echo "Hello from the guest!" >/mnt/from-guest.txt
cat /mnt/from-guest.txt
section "make a directory with a file in it: /mnt/guest-dir/note.txt"
mkdir /mnt/guest-dir
echo "written inside a directory the guest made" >/mnt/guest-dir/note.txt
ls -la /mnt/guest-dir
section "append a line to the host's /mnt/notes.txt"
echo "notes, line 3 (appended by the guest)" >>/mnt/notes.txt
cat /mnt/notes.txt
section "the share now"
ls -la /mnt
GUEST

say "booting a Linux guest under QEMU (TCG, no KVM): its console follows"
set +e
"$GUEST" "$SOCK" "$TESTDIR/guest-script.sh" 2>&1 | sed -u 's/^/   | /'
grc=${PIPESTATUS[0]}
set -e
[ "$grc" -eq 0 ] || { tail -n 20 "$BACKEND_LOG" | sed 's/^/   backend| /'
                      fail "the guest run failed (guest.sh exit $grc: 2 = mount failed, 3 = guest crashed/hung)"; }

say "the guest powered off; here is what the host sees in $DIR:"
for f in from-guest.txt guest-dir/note.txt notes.txt; do
  echo "   --- $f"
  if [ -f "$DIR/$f" ]; then sed 's/^/   /' "$DIR/$f"; else echo "   (missing)"; fi
done
check() {   # file expected-content
  [ -f "$DIR/$1" ] || fail "$1 is not on the host"
  [ "$(cat "$DIR/$1")" = "$2" ] || fail "$1 on the host does not hold what the guest wrote"
}
[ -d "$DIR/guest-dir" ] || fail "guest-dir is not on the host"
check from-guest.txt "Hello from the guest!"
check guest-dir/note.txt "written inside a directory the guest made"
check notes.txt "$(printf 'notes, line 1 (host)\nnotes, line 2 (host)\nnotes, line 3 (appended by the guest)')"
say "checks passed: the guest read the host's files, and the host sees every write the guest made"

say "stopping $name"
st=0; stop_backend >"$TESTDIR/stop.txt" || st=$?
sed 's/^/   /' "$TESTDIR/stop.txt"
case $st in 0|143) ;; *) say "warning: $name did not exit cleanly" ;; esac
say "demo finished in $((SECONDS - t0))s"
