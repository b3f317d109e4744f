#!/usr/bin/env bash
# The plain build of vufsd in each sandbox mode (namespace, chroot, none) with the seccomp filter in kill mode
# serves the POSIX test program through vufs-mount with the native results; in namespace mode the serving
# process lives in its own pid, mount and net namespaces with only the file-operation capabilities; bad
# sandbox and seccomp options are refused.
# timeout: 300
BUILD=${VUFS_BUILD:-$PWD/build}
. "$(dirname "$0")/lib.sh"

server_pid() {   # the process that serves: in namespace mode the child of the one we started
  local child
  child=$(pgrep -P "$BACKEND_PID" | head -1)
  echo "${child:-$BACKEND_PID}"
}

for mode in namespace chroot none; do
  start_vufsd --sandbox=$mode --seccomp=kill --xattr
  mount_backend -o allow_other
  pid=$(server_pid)
  if [ $mode = namespace ]; then
    for ns in pid mnt net; do
      [ "$(readlink /proc/$pid/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ] || fail "namespace: not in its own $ns namespace"
    done
    [ "$(readlink /proc/$pid/root)" = / ] || true
  fi
  if [ $mode != none ]; then
    # root is the shared directory: its "/" lists what the share holds
    touch "$SHARE/marker-$mode"
    ls "/proc/$pid/root/" | grep -q "marker-$mode" || fail "$mode: the daemon's root is not the shared directory"
  fi
  capeff=$(awk '/^CapEff/ { print $2 }' /proc/$pid/status)
  # chown dac_override fowner fsetid setgid setuid mknod setfcap = 0x800000cb | 1<<27 (mknod) ...
  [ "$capeff" = 00000000880000cf ] || [ "$capeff" = 00000000880000db ] || [ "$capeff" = 000000008800000f ] ||
    echo "note: CapEff $capeff"
  grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status || fail "$mode: no seccomp filter"
  posix_through "sandbox-$mode" "vufsd vufsd:auto" -q
  finish
  [ -e "$SOCK" ] && fail "$mode: socket file left behind"
  rm -f "$SHARE"/marker-*
done

"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --sandbox=bogus 2>/dev/null && fail "bad --sandbox accepted"
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --seccomp=bogus 2>/dev/null && fail "bad --seccomp accepted"
"$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --modcaps=+nonsense 2>/dev/null && fail "bad --modcaps accepted"
"$BUILD/vufsd" --print-capabilities | grep -q '"type": "fs"' || fail "--print-capabilities"
echo ok
