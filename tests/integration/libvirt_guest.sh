#!/usr/bin/env bash
# Real libvirt (Debian bookworm's 9.0) starts vufsd itself for a transient QEMU/TCG domain with a virtiofs
# <filesystem> (binary path = build/vufsd, cache=always, xattr, POSIX and flock locks), exactly as it starts
# virtiofsd: it opens the vhost-user socket, runs "vufsd --fd=N -o source=DIR,cache=...,xattr,flock,posix_lock"
# as root with the default confinement (namespace sandbox, seccomp filter), logs to
# /var/log/libvirt/qemu/DOMAIN-fs0-virtiofsd.log and gives QEMU the socket. The guest (Debian's kernel, direct
# kernel boot with tests/vm/guest.sh's initrd) writes files, lists the share and runs the POSIX test program's
# xattr and lock cases; the host sees the files; the guest powers off; vufsd must then have exited (cleanly:
# its log ends with "exiting"). Then `make install` (PREFIX in the test's directory) puts a vhost-user backend
# descriptor in /etc/qemu/vhost-user/ (10-vufsd-test.json, removed at the end), and the same domain without any
# <binary path=...> must get vufsd from libvirt by itself, as QEMU's virtiofsd is found through its
# 50-qemu-virtiofsd.json. The same domain is then run with QEMU's C virtiofsd as the binary, to show that the test
# itself works with the reference.
# The test installs libvirt-daemon-system and libvirt-clients if missing and, without systemd, starts virtlogd and
# libvirtd itself (libvirtd in a mount namespace whose /dev has no kvm node, see below) and stops them at the
# end, unless they already run. It changes no libvirt configuration file: QEMU runs as libvirt-qemu and reads
# the kernel and initrd from a world-readable directory; libvirt's debug log of process kills is turned on
# through virt-admin for the test (it tells whether the daemon exited by itself) and restored after.
# timeout: 600
set -uo pipefail
TESTDIR_PREFIX=vufs-libvirt
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
say() { echo "== $*"; }
VUFSD=$VUFS_BUILD/vufsd POSIX=$VUFS_BUILD/vufs-posix REF=/usr/lib/qemu/virtiofsd
URI=qemu:///system
DOM_TIMEOUT=${DOM_TIMEOUT:-150}
[ -x "$VUFSD" ] && [ -x "$POSIX" ] || fail "build first: make all ($VUFSD, $POSIX)"
[ "$(id -u)" = 0 ] || skip "libvirt's system daemon needs root"
t0=$SECONDS
need_pkgs qemu-system-x86 qemu-system-common busybox-static cpio xz-utils libvirt-daemon-system libvirt-clients ||
  fail "cannot install libvirt (apt-get failed)"
VIRSH=$(command -v virsh) || fail "no virsh after installing libvirt-clients"
virsh() { timeout 60 "$VIRSH" -q -c "$URI" "$@"; }
chmod 0755 "$TESTDIR"     # QEMU runs as libvirt-qemu: it must reach the kernel, the initrd

# --- daemons: use running ones, else start virtlogd and libvirtd (no systemd) and stop them at the end ----
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }   # zombies are dead
alive_pidfile() { [ -s "$1" ] && alive "$(cat "$1")"; }
STARTED=()
stop_started() {
  local p i
  for p in ${STARTED[@]+"${STARTED[@]}"}; do
    kill -TERM "$p" 2>/dev/null || continue
    for i in $(seq 100); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  STARTED=()
}
CLEANUP_CMDS+=(stop_started)
if virsh uri >/dev/null 2>&1; then
  say "libvirtd already runs: using it (if it can see /dev/kvm, each libvirt call may probe QEMU again: slow)"
else
  if ! alive_pidfile /run/virtlogd.pid; then
    rm -f /run/virtlogd.pid     # stale: its pid may belong to another process by now
    virtlogd -d || fail "virtlogd -d failed"
    for _ in $(seq 50); do alive_pidfile /run/virtlogd.pid && break; sleep 0.1; done
    alive_pidfile /run/virtlogd.pid || fail "virtlogd did not start"
    STARTED=("$(cat /run/virtlogd.pid)" ${STARTED[@]+"${STARTED[@]}"})
  fi
  if alive_pidfile /run/libvirtd.pid; then fail "libvirtd (pid $(cat /run/libvirtd.pid)) runs but does not answer on $URI"; fi
  rm -f /run/libvirtd.pid
  # libvirtd gets its own mount namespace with a minimal /dev that has no kvm node. Its capability probe runs
  # QEMU with accel=kvm:tcg and CAP_DAC_OVERRIDE, so it would open KVM (which must not be used on these hosts);
  # and with a /dev/kvm that libvirt-qemu cannot open (0600 root, as here) the cached capabilities never
  # validate, so every API call probes QEMU again (two QEMU runs, ~4 s; "virsh create" took ~50 s). Mounting
  # over /dev/kvm alone does not do: libvirt moves every mount under /dev into each QEMU's own /dev, and fails
  # on a file. The domains are TCG anyway.
  if [ -e /dev/kvm ]; then
    # shellcheck disable=SC2016   # the script runs in the new namespace
    unshare --mount --propagation private sh -ec '
      umount -l /dev
      mount -t tmpfs -o mode=0755,nosuid,size=1m vufs-test-dev /dev
      for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
        set -- $n; mknod -m 0666 "/dev/$1" c "$2" "$3"
      done
      mkdir -m 0755 /dev/pts; mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
      ln -s pts/ptmx /dev/ptmx
      mkdir -m 1777 /dev/shm; mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
      ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
      exec libvirtd -d' </dev/null || fail "libvirtd -d (in a mount namespace without /dev/kvm) failed"
  else
    libvirtd -d || fail "libvirtd -d failed (see /var/log/libvirt/libvirtd.log)"
  fi
  for _ in $(seq 50); do alive_pidfile /run/libvirtd.pid && break; sleep 0.1; done
  alive_pidfile /run/libvirtd.pid || fail "libvirtd did not start: $(tail -n 5 /var/log/libvirt/libvirtd.log 2>/dev/null)"
  STARTED=("$(cat /run/libvirtd.pid)" ${STARTED[@]+"${STARTED[@]}"})     # stopped first
  for _ in $(seq 600); do virsh uri >/dev/null 2>&1 && break; sleep 0.1; done
  virsh uri >/dev/null 2>&1 || fail "libvirtd does not answer on $URI: $(tail -n 5 /var/log/libvirt/libvirtd.log)"
  say "started virtlogd and libvirtd ($((SECONDS - t0))s so far)"
fi
if [ -d /sys/kernel/security/apparmor ] && [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
  echo "note: AppArmor is enabled; libvirt's security driver may confine QEMU"
fi
say "$("$VIRSH" -c "$URI" version 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g')"

# libvirt's debug log of process kills, to tell whether the daemon exited by itself or libvirt stopped it
# shellcheck disable=SC2034   # old_filters is used by the cleanup command below
old_filters=$(timeout 10 virt-admin -q daemon-log-filters 2>/dev/null | sed -n 's/^ *Logging filters: *//p')
old_outputs=$(timeout 10 virt-admin -q daemon-log-outputs 2>/dev/null | sed -n 's/^ *Logging outputs: *//p')
LVLOG=$TESTDIR/libvirtd-debug.log
if timeout 10 virt-admin -q daemon-log-filters "1:util.process 1:util.pidfile" >/dev/null 2>&1 &&
   timeout 10 virt-admin -q daemon-log-outputs "1:file:$LVLOG ${old_outputs:-3:stderr}" >/dev/null 2>&1; then
  # shellcheck disable=SC2016   # expanded when cleanup runs
  CLEANUP_CMDS+=('timeout 10 virt-admin -q daemon-log-filters "$old_filters" >/dev/null 2>&1; timeout 10 virt-admin -q daemon-log-outputs "${old_outputs:-3:stderr}" >/dev/null 2>&1')
else
  LVLOG=''; echo "note: virt-admin could not set libvirtd's log filters; cannot tell who stopped the daemon"
fi

# --- kernel and initrd ----------------------------------------------------------------------------------
cat >"$TESTDIR/guest.sh" <<'EOF'
set -e
echo "hello from the libvirt guest" >/mnt/from-guest.txt
mkdir /mnt/guest-dir; echo nested >/mnt/guest-dir/f
cat /mnt/host.txt
echo LS-BEGIN; ls -la /mnt; echo LS-END
set +e
echo POSIX-BEGIN
for c in xattr_user lock_posix lock_flock; do vufs-posix -k $c /mnt | grep -v '^RESULT'; done
echo POSIX-END
EOF
read -r kernel initrd < <(INITRD=$TESTDIR/initrd.gz PREPARE_ONLY=1 "$GUEST" "$TESTDIR/none" "$TESTDIR/guest.sh" "$POSIX") ||
  fail "guest.sh --prepare-only failed"
[ -f "$kernel" ] && [ -s "$initrd" ] || fail "no kernel/initrd from guest.sh --prepare-only"
cp "$kernel" "$TESTDIR/vmlinuz"
chmod 0644 "$TESTDIR/vmlinuz" "$TESTDIR/initrd.gz"

# --- one domain --------------------------------------------------------------------------------------------
KILL_PIDS=()     # the daemon libvirt started, while it may run (cleanup runs the commands last added first)
# shellcheck disable=SC2016
CLEANUP_CMDS+=('for p in ${KILL_PIDS[@]+"${KILL_PIDS[@]}"}; do kill -KILL "$p" 2>/dev/null; done')
DOMS=()
# shellcheck disable=SC2016
CLEANUP_CMDS+=('for d in ${DOMS[@]+"${DOMS[@]}"}; do virsh destroy "$d" >/dev/null 2>&1; rm -f /var/log/libvirt/qemu/"$d"*.log; done')

# run_domain LABEL BINARY: boots the domain, checks the guest's work, the daemon's exit. Fails the test on error.
run_domain() {
  local label=$1 binary=$2 t=$SECONDS expect=${3:-$2} binattr=''
  [ -n "$binary" ] && binattr=" path='$binary'"
  local name share console xml pidfile pid kids p i
  name=vufs-test-$label-$$ share=$TESTDIR/share-$label xml=$TESTDIR/$label.xml
  local serial=$TESTDIR/serial-$label.log console=$TESTDIR/console-$label.txt
  mkdir -p "$share"; chmod 0755 "$share"
  echo "a file from the host" >"$share/host.txt"
  cat >"$xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$TESTDIR/vmlinuz</kernel>
    <initrd>$TESTDIR/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 vufs.fs=virtiofs vufs.tag=myfs</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='128'/>
      <binary$binattr xattr='on'>
        <cache mode='always'/>
        <lock posix='on' flock='on'/>
      </binary>
      <source dir='$share'/>
      <target dir='myfs'/>
    </filesystem>
    <serial type='file'><source path='$serial'/><target port='0'/></serial>
    <console type='file'><source path='$serial'/><target type='serial' port='0'/></console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
  DOMS+=("$name")
  local tc=$SECONDS
  virsh create "$xml" >"$TESTDIR/create-$label.txt" 2>&1 ||
    { cat "$TESTDIR/create-$label.txt"; tail -n 20 "/var/log/libvirt/qemu/$name.log" 2>/dev/null
      cat "/var/log/libvirt/qemu/$name-fs0-virtiofsd.log" 2>/dev/null; fail "$label: virsh create failed"; }
  pidfile=$(ls /run/libvirt/qemu/*-"${name:0:20}"-fs0-fs.pid 2>/dev/null | head -1)   # libvirt's short name
  pid=$(cat "$pidfile" 2>/dev/null)
  [ -n "$pid" ] || fail "$label: no daemon pid file from libvirt (/run/libvirt/qemu/*-${name:0:20}-fs0-fs.pid)"
  kids=$(pgrep -P "$pid" | tr '\n' ' ')       # vufsd's sandboxed child (namespace sandbox), virtiofsd's too
  # shellcheck disable=SC2206   # kids is a list of pids
  KILL_PIDS+=("$pid" $kids)
  local cmdline; cmdline=$(grep -A1 'Starting external device: virtiofsd' "/var/log/libvirt/qemu/$name.log" | tail -1)
  say "$label: libvirt started: $cmdline (pid $pid, children: ${kids:-none}; virsh create took $((SECONDS - tc))s)"
  for p in $pid $kids; do
    echo "   pid $p: $(grep -E '^Seccomp:' "/proc/$p/status" 2>/dev/null | tr -s '\t ' ' '), mnt ns $(readlink "/proc/$p/ns/mnt" 2>/dev/null) (host $(readlink /proc/self/ns/mnt)), uid $(awk '/^Uid:/ {print $2}' "/proc/$p/status" 2>/dev/null)"
  done
  if [ "$label" != reference ]; then
    [[ $cmdline == "$expect --fd="[0-9]*" -o source=$share,cache=always,xattr,flock,posix_lock"* ]] ||
      fail "$label: unexpected command line from libvirt: $cmdline"
    [ -n "$kids" ] && grep -q '^Seccomp:[[:space:]]*2' "/proc/${kids%% *}/status" ||
      fail "$label: vufsd's sandboxed child is missing or has no seccomp filter"
  fi

  # Wait for the domain to go without asking libvirtd: a libvirtd that sees an unusable /dev/kvm (not ours)
  # probes QEMU's capabilities again on every call, which takes the CPU from the TCG guest. libvirt removes
  # the domain's status file when the domain is gone.
  local qpid; qpid=$(cat "/run/libvirt/qemu/$name.pid" 2>/dev/null)
  for ((i = 0; i < DOM_TIMEOUT * 10; i++)); do
    [ -e "/run/libvirt/qemu/$name.xml" ] || { [ -n "$qpid" ] && alive "$qpid"; } || break
    sleep 0.1
  done
  tr -d '\r' <"$serial" >"$console" 2>/dev/null
  if [ -e "/run/libvirt/qemu/$name.xml" ]; then
    cat "$console"; virsh destroy "$name" >/dev/null 2>&1
    fail "$label: the domain still runs after ${DOM_TIMEOUT}s"
  fi
  local gone=$SECONDS
  cp "/var/log/libvirt/qemu/$name-fs0-virtiofsd.log" "$TESTDIR/daemon-$label.log" 2>/dev/null ||
    : >"$TESTDIR/daemon-$label.log"
  cp "/var/log/libvirt/qemu/$name.log" "$TESTDIR/qemu-$label.log" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    local left=''
    for p in $pid $kids; do alive "$p" && left+=" $p"; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  [ -z "$left" ] || { cat "$TESTDIR/daemon-$label.log"; fail "$label: daemon process(es)$left still run 10s after the domain is gone"; }
  KILL_PIDS=()      # gone: their pids may be reused, never signal them again

  # the guest's work
  sed -n '/GUEST-MOUNT/,$p' "$console" | sed 's/^/   | /'
  grep -q GUEST-MOUNT-OK "$console" || { cat "$console" "$TESTDIR/daemon-$label.log"; fail "$label: the guest could not mount the share"; }
  grep -q 'GUEST-SCRIPT-EXIT 0' "$console" || fail "$label: the guest script failed"
  grep -q 'reboot: Power down' "$console" || fail "$label: the guest did not power off"
  [ "$(cat "$share/from-guest.txt" 2>/dev/null)" = "hello from the libvirt guest" ] || fail "$label: the guest's file is not on the host"
  [ "$(cat "$share/guest-dir/f" 2>/dev/null)" = nested ] || fail "$label: the guest's directory is not on the host"
  console_section LS-BEGIN LS-END "$console" | grep -q ' host.txt$' || fail "$label: the guest's listing lacks host.txt"
  grep -q '^a file from the host$' "$console" || fail "$label: the guest could not read host.txt"

  # how the daemon ended
  local how="exited by itself"
  if [ -n "$LVLOG" ] && grep -Eq "virProcessKillPainfully[A-Za-z]*:[0-9]+ : vpid=$pid " "$LVLOG" 2>/dev/null; then
    how="was still running when the domain stopped: libvirt sent it SIGTERM"
  fi
  say "$label: daemon $how; its log:"
  sed 's/^/   | /' "$TESTDIR/daemon-$label.log"
  if [ "$label" != reference ]; then
    [ "$how" = "exited by itself" ] || fail "$label: vufsd did not exit when QEMU went away (libvirt had to stop it)"
    tail -n 1 "$TESTDIR/daemon-$label.log" | grep -qx 'vufsd: info: exiting' ||
      fail "$label: vufsd's log does not end with a clean exit"
    if grep -Eq '^(FAIL|SKIP) ' <(console_section POSIX-BEGIN POSIX-END "$console"); then
      fail "$label: xattr/lock cases did not pass in the guest (see above)"
    fi
  fi
  say "$label: ok ($((SECONDS - t))s; domain gone after $((gone - t))s)"
  rm -f "/var/log/libvirt/qemu/$name"*.log
}

run_domain vufsd "$VUFSD"

# libvirt finds vufsd by itself through the descriptor `make install` writes
PREFIX_DIR=$TESTDIR/prefix DESC=/etc/qemu/vhost-user/10-vufsd-test.json
CLEANUP_CMDS+=("rm -f $DESC")
make -s -C "$VUFS_ROOT" install PREFIX="$PREFIX_DIR" VHOST_USER_DIR=/etc/qemu/vhost-user \
  VHOST_USER_JSON=10-vufsd-test.json >"$TESTDIR/install.log" 2>&1 || { cat "$TESTDIR/install.log"; fail "make install failed"; }
chmod -R a+rX "$PREFIX_DIR"
grep -q "\"binary\": \"$PREFIX_DIR/libexec/vufsd\"" "$DESC" || { cat "$DESC"; fail "the descriptor does not name the installed vufsd"; }
run_domain descriptor "" "$PREFIX_DIR/libexec/vufsd"
rm -f "$DESC"
if [ -x "$REF" ]; then
  run_domain reference "$REF"
else
  echo "note: $REF is not installed: no reference run"
fi
say "total $((SECONDS - t0))s"
