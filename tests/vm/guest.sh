#!/usr/bin/env bash
# Boot a real Linux guest (Debian's generic kernel, its in-tree virtiofs driver) under QEMU TCG against a
# vhost-user-fs backend socket (or QEMU's built-in virtio-9p server), run a script inside it, power off.
#
#   tests/vm/guest.sh [options] TARGET GUEST_SCRIPT [static binaries...]
#
# TARGET is a vhost-user socket path (the backend must already listen on it) or 9p:HOSTDIR. The guest mounts
# the export at /mnt (virtiofs tag "myfs"), prints GUEST-MOUNT-OK (or GUEST-MOUNT-FAIL), runs GUEST_SCRIPT
# with busybox /bin/sh as root, prints "GUEST-SCRIPT-EXIT <rc>", syncs, unmounts and powers off. The binaries
# are copied to the guest's /bin and must be static (the guest has busybox and no libc). In the guest,
# `runas UID[:GID] CMD...` runs CMD with those numeric ids (no user names exist or are needed); /tmp is 1777.
# Its init prints GUEST-INIT first: a guest that hangs without it never finished booting its kernel.
# Everything the guest prints (serial console, ttyS0) goes to stdout, without CRs and terminal escapes; our own
# notes and QEMU's errors go to stderr.
#
# Options (flag, or the environment variable in brackets):
#   -m, --mem SIZE          guest memory, a shared memfd [MEM, default 1G]
#   -s, --smp N             guest CPUs [SMP, default 2]
#   -q, --queues N          virtio-fs request queues, num-request-queues [QUEUES, default 1]
#       --queue-size N      virtqueue size, queue-size [QUEUE_SIZE, default QEMU's 128]
#   -o, --mount-opts OPTS   extra guest mount options, e.g. dax (9p: appended to its own) [MOUNT_OPTS]
#   -a, --append ARGS       extra kernel command line [KERNEL_APPEND]
#   -t, --timeout SECS      kill QEMU after SECS [GUEST_TIMEOUT, default 600]
#       --modules "M ..."   extra kernel modules to load (dependencies are resolved) [EXTRA_MODULES]
#       --device-opts OPTS  appended to the virtio-fs device, e.g. packed=on [DEVICE_OPTS]
#       --qemu 7.2|11.1     the VMM: bookworm's QEMU 7.2, or Debian sid's QEMU 11.1 run through
#                           scripts/peers/qemu111.sh (fetched into /var/cache/vufs-peers on first use; not
#                           available: exit 4) [QEMU_VERSION, default 7.2]
#       --device fs|generic fs = vhost-user-fs-pci (tag "myfs" set by QEMU); generic = QEMU 11.1's
#                           vhost-user-test-device-pci (virtio-id=26, num_vqs=1+QUEUES, config_size=40,
#                           vq_size=QUEUE_SIZE or 128), the only device with a virtio-fs DAX window: the tag then
#                           comes from the backend's config space (start it with --tag=myfs), and the window (its
#                           size) from the backend too, when it offers VHOST_USER_PROTOCOL_F_SHMEM; mount it with
#                           e.g. --mount-opts dax=always. It passes the backend's virtio features through
#                           (packed rings if offered: packed=off does not apply). Needs --qemu 11.1
#                           [VIRTIO_FS_DEVICE, default fs]
#       --kernel bookworm|sid  the guest kernel: bookworm's linux-image-amd64 (6.1), or Debian sid's current one
#                           (7.x; its linux-binary package: virtio, fuse and virtiofs are built in; its
#                           linux-modules package, 110 MB, is fetched too only for 9p or --modules). sid's is
#                           resolved with the private apt lists of scripts/peers/sid-apt.sh and cached under
#                           CACHE/sid/, keyed by version [GUEST_KERNEL, default bookworm]
#       --qemu-args ARGS    extra QEMU arguments, split on spaces [QEMU_ARGS]
#       (no flag)           options appended to the backend's -chardev socket, e.g. ",reconnect-ms=1000"
#                           [CHARDEV_OPTS]
#       --watch-pid PID     stop QEMU soon after process PID (the backend) exits [WATCH_PID; lib.sh sets it]
#       --pid-file FILE     QEMU writes its pid there (a test can signal QEMU through it) [QEMU_PIDFILE,
#                           default a file in guest.sh's own temp dir]; removed when QEMU has exited
#   -c, --cache DIR         kernel cache, keyed by kernel version [VUFS_VM_CACHE, default /var/cache/vufs-vm]
#       --prepare-only      build the initrd, print "KERNEL INITRD", boot nothing [PREPARE_ONLY=1]; the initrd
#                           goes to $INITRD if set, else to a new temp dir that the caller removes. Kernel
#                           command line to use: console=ttyS0 panic=-1 (vufs.fs=9p|virtiofs, vufs.tag=TAG).
#   -h, --help
#
# Exit status: the guest script's exit status (from GUEST-SCRIPT-EXIT), 2 if the mount failed (the script is
# then not run), 3 if no GUEST-SCRIPT-EXIT was seen (guest crashed or hung, QEMU failed, or timed out),
# 4 if the harness itself could not set up (bad arguments, no socket, no kernel).
# With --device generic, or whenever the guest has a DAX window, the guest prints after its mount attempt
#   GUEST-DAX-INFO-BEGIN / the dmesg lines about the window (grep -i "cache len|cache capability|dax": e.g.
#   "virtiofs virtio0: Cache len: 0x4000000 @ 0x...", or "virtio_fs_setup_dax: No cache capability") / the /mnt line
#   of /proc/mounts, prefixed "mount: " / GUEST-DAX-INFO-END
# (read it with lib.sh's console_section). The output of the other runs is unchanged.
# Missing Debian packages (qemu-system-x86, busybox-static, cpio, xz-utils) are installed with apt-get.
# Never uses KVM. KERNEL_PKG picks another kernel package than linux-image-amd64's dependency (a versioned one,
# e.g. linux-image-6.1.0-56-cloud-amd64; the cloud kernel has no 9p).
set -euo pipefail

me=guest.sh
die() { echo "$me: $*" >&2; exit 4; }
note() { echo "$me: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

MEM=${MEM:-1G}; SMP=${SMP:-2}; QUEUES=${QUEUES:-1}; QUEUE_SIZE=${QUEUE_SIZE:-}; MOUNT_OPTS=${MOUNT_OPTS:-}
KERNEL_APPEND=${KERNEL_APPEND:-}; GUEST_TIMEOUT=${GUEST_TIMEOUT:-600}; EXTRA_MODULES=${EXTRA_MODULES:-}
DEVICE_OPTS=${DEVICE_OPTS:-}; QEMU_ARGS=${QEMU_ARGS:-}; CACHE=${VUFS_VM_CACHE:-/var/cache/vufs-vm}
PREPARE_ONLY=${PREPARE_ONLY:-}; WATCH_PID=${WATCH_PID:-}; QEMU_PIDFILE=${QEMU_PIDFILE:-}
QEMU_VERSION=${QEMU_VERSION:-7.2}; VIRTIO_FS_DEVICE=${VIRTIO_FS_DEVICE:-fs}; GUEST_KERNEL=${GUEST_KERNEL:-bookworm}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

while [ $# -gt 0 ]; do
  opt=$1 val=
  case $opt in
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
    -h|--help) usage; exit 0 ;;
    --prepare-only) PREPARE_ONLY=1; shift; continue ;;
    --) shift; break ;;
    -?*) [ $# -ge 2 ] || die "option $opt needs a value"; val=$2; shift ;;
    *) break ;;
  esac
  shift
  case $opt in
    -m|--mem) MEM=$val ;;             -s|--smp) SMP=$val ;;
    -q|--queues) QUEUES=$val ;;       --queue-size) QUEUE_SIZE=$val ;;
    -o|--mount-opts) MOUNT_OPTS=$val ;; -a|--append) KERNEL_APPEND=$val ;;
    -t|--timeout) GUEST_TIMEOUT=$val ;; --modules) EXTRA_MODULES=$val ;;
    --device-opts) DEVICE_OPTS=$val ;;  --qemu-args) QEMU_ARGS=$val ;;
    -c|--cache) CACHE=$val ;;         --watch-pid) WATCH_PID=$val ;;
    --pid-file) QEMU_PIDFILE=$val ;;   --qemu) QEMU_VERSION=$val ;;
    --device) VIRTIO_FS_DEVICE=$val ;; --kernel) GUEST_KERNEL=$val ;;
    *) die "unknown option $opt (see --help)" ;;
  esac
done
[ $# -ge 2 ] || die "usage: $0 [options] TARGET GUEST_SCRIPT [static binaries...] (see --help)"
target=$1 script=$2; shift 2
[ -f "$script" ] || die "no guest script $script"
for b in "$@"; do [ -f "$b" ] || die "no such file $b"; done
case $target in
  9p:*) share=${target#9p:}; [ -d "$share" ] || die "no directory $share"; fs=9p ;;
  *)    fs=virtiofs
        [ -n "$PREPARE_ONLY" ] || [ -S "$target" ] || die "no vhost-user socket at $target (is the backend running?)" ;;
esac
for n in "$SMP" "$QUEUES" "$GUEST_TIMEOUT" ${QUEUE_SIZE:+"$QUEUE_SIZE"}; do
  [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"
done
case $QEMU_VERSION in 7.2|11.1) ;; *) die "--qemu: 7.2 or 11.1, not $QEMU_VERSION" ;; esac
case $VIRTIO_FS_DEVICE in fs) ;; generic)
  [ "$QEMU_VERSION" = 11.1 ] || die "--device generic needs --qemu 11.1 (QEMU 7.2 has no vhost-user-test-device-pci)"
  [ "$fs" = virtiofs ] || die "--device generic serves a vhost-user socket, not 9p" ;;
  *) die "--device: fs or generic, not $VIRTIO_FS_DEVICE" ;; esac
case $GUEST_KERNEL in bookworm|sid) ;;
  *) die "--kernel: bookworm or sid, not $GUEST_KERNEL" ;; esac

# --- host packages (idempotent: apt only when something is missing) -------------------------------------
need_pkgs=(qemu-system-x86 qemu-system-common busybox-static cpio xz-utils)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages (run as root to install): ${missing[*]}"
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  then die "apt-get install ${missing[*]} failed"; fi
fi

# --- per-run temp dir ----------------------------------------------------------------------------------
run=$(mktemp -d "${TMPDIR:-/tmp}/vufs-guest.XXXXXX")
keep_run=
qpid=${QEMU_PIDFILE:-$run/qemu.pid}
rm -f "$qpid"      # a stale pid must not be signalled
# shellcheck disable=SC2317   # invoked by the trap
cleanup() {
  if [ -s "$qpid" ]; then kill "$(cat "$qpid")" 2>/dev/null || true; fi   # interrupted mid-boot
  [ -z "${guestjob:-}" ] || wait "$guestjob" 2>/dev/null || true
  [ -z "${watcher:-}" ] || kill "$watcher" 2>/dev/null || true
  [ -z "${snapshot:-}" ] || kill "$snapshot" 2>/dev/null || true
  [ -n "$keep_run" ] || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- kernel: Debian's generic package, unpacked (not installed) into the cache, keyed by version ---------
# bookworm: the host's apt and $CACHE/linux-VERSION; sid: the private sid lists of scripts/peers/sid-apt.sh, only
# the linux-binary-VERSION package (the kernel image; what a virtio-fs guest needs is built in), $CACHE/sid/linux-VERSION.
mkdir -p "$CACHE" 2>/dev/null || true
[ -w "$CACHE" ] || die "cache dir $CACHE is not writable (set VUFS_VM_CACHE)"
exec {lockfd}>"$CACHE/.lock"
flock "$lockfd"        # one download/unpack at a time; released when we exit
rm -rf "$CACHE"/.dl.*  # left by an interrupted download (only the lock holder downloads)
kbase=$CACHE
newest_cached() { find "$kbase" -maxdepth 2 -path "$kbase/linux-*/.complete" -printf '%h\n' 2>/dev/null |
                    sed 's|.*/linux-||' | sort -V | tail -1; }
kapt() { "$@"; }
if [ "$GUEST_KERNEL" = sid ]; then
  # shellcheck source=scripts/peers/sid-apt.sh
  . "$top/scripts/peers/sid-apt.sh"
  kbase=$CACHE/sid; mkdir -p "$kbase"
  kapt() { sid_apt "$@"; }
  sid_lists=${VUFS_PEER_CACHE:-/var/cache/vufs-peers}/apt-${VUFS_PEER_SUITE:-sid}
  sid_apt_init "$sid_lists" "${VUFS_PEER_SUITE:-sid}" || { note "$SID_APT_ERR"; kapt() { return 1; }; }
fi
kpkg() { kapt apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1; }
pkg=${KERNEL_PKG:-$(kpkg)}
if [ "$GUEST_KERNEL" = sid ] && [ -n "$pkg" ] && [ ! -f "$kbase/linux-${pkg#linux-image-}/.complete" ] &&
   [ -n "$(find "$sid_lists/lists/.complete" -mmin +60 2>/dev/null)" ]; then
  sid_apt_refresh || note "$SID_APT_ERR"; pkg=$(kpkg)    # about to download: not from hour-old lists
fi
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ] && [ "$GUEST_KERNEL" = bookworm ]; then
  apt-get update -qq >/dev/null 2>&1 || true; pkg=$(kpkg)
fi
if [ -z "$pkg" ]; then     # offline with empty apt lists: fall back to the newest kernel already cached
  last=$(newest_cached)
  [ -n "$last" ] || die "cannot resolve linux-image-amd64 (apt lists empty?) and nothing cached in $kbase"
  pkg=linux-image-$last; note "apt cannot resolve the kernel; using the cached $pkg"
fi
kver=${pkg#linux-image-}
dlpkg=$pkg; [ "$GUEST_KERNEL" = bookworm ] || dlpkg=linux-binary-$kver
if [ ! -f "$kbase/linux-$kver/.complete" ]; then
  note "downloading and unpacking $dlpkg into $kbase/linux-$kver (once per kernel version)"
  dl=$(mktemp -d "$CACHE/.dl.XXXXXX")
  if ! (cd "$dl" && kapt apt-get download "$dlpkg") >"$dl/apt.log" 2>&1; then
    last=$(newest_cached); [ -n "$last" ] || { cat "$dl/apt.log" >&2; die "apt-get download $dlpkg failed"; }
    note "apt-get download $pkg failed; using the cached linux-image-$last"; kver=$last; rm -rf "$dl"
  fi
fi
kdir=$kbase/linux-$kver
kernel=$kdir/boot/vmlinuz-$kver
[ "$GUEST_KERNEL" = bookworm ] || kernel=$kdir/usr/lib/modules/$kver/vmlinuz
if [ ! -f "$kdir/.complete" ]; then
  dpkg -x "$dl"/*.deb "$dl/x" || { rm -rf "$dl"; die "dpkg -x failed"; }
  rm -rf "$kdir"; mv "$dl/x" "$kdir"; rm -rf "$dl"
  [ -f "$kernel" ] || die "no $kernel in $dlpkg"
  touch "$kdir/.complete"
  if [ -z "${KERNEL_PKG:-}" ]; then    # a new kernel version replaces the older ones
    find "$kbase" -maxdepth 1 -name 'linux-*' -type d ! -name "linux-$kver" -exec rm -rf {} +
  fi
fi
moddir=$kdir/lib/modules/$kver
if [ "$GUEST_KERNEL" = sid ]; then
  moddir=$kdir/usr/lib/modules/$kver
  # sid's modules come in their own package: fetched (once per version) only when the guest needs one
  if { [ "$fs" = 9p ] || [ -n "$EXTRA_MODULES" ]; } && [ ! -f "$kdir/.modules-complete" ]; then
    note "downloading and unpacking linux-modules-$kver into $kdir (once per kernel version)"
    dl=$(mktemp -d "$CACHE/.dl.XXXXXX")
    (cd "$dl" && kapt apt-get download "linux-modules-$kver") >"$dl/apt.log" 2>&1 &&
      dpkg -x "$dl"/*.deb "$kdir" || { cat "$dl/apt.log" >&2; rm -rf "$dl"; die "linux-modules-$kver: no modules"; }
    rm -rf "$dl"; touch "$kdir/.modules-complete"
  fi
fi
exec {lockfd}>&-

# --- modules: the wanted ones plus their dependencies, in load order ----------------------------------
# The package has no modules.dep (depmod runs at install time), so read each module's own "depends=" field.
wanted="virtio_pci virtiofs $EXTRA_MODULES"
[ "$GUEST_KERNEL" = bookworm ] || wanted=$EXTRA_MODULES   # sid's kernel has virtio_pci and virtiofs built in
unpack_ko() {
  case $1 in
    *.ko.xz)  xz -dc "$1" ;;
    *.ko.gz)  gzip -dc "$1" ;;
    *.ko.zst) zstd -dc "$1" ;;
    *)        cat "$1" ;;
  esac
}
declare -A modpath=() seen=()
while IFS= read -r p; do
  n=${p##*/}; n=${n%%.ko*}; modpath[${n//-/_}]=$p
done < <(find "$moddir" -name '*.ko*' -type f 2>/dev/null)
order=()
add_mod() {
  local n=${1//-/_} d deps
  [ -z "${seen[$n]:-}" ] || return 0
  seen[$n]=1
  if [ -z "${modpath[$n]:-}" ]; then
    grep -Eq "/${n//_/[-_]}\.ko\$" "$moddir/modules.builtin" 2>/dev/null && return 0
    die "kernel $kver has no module $n"
  fi
  deps=$(unpack_ko "${modpath[$n]}" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -1)
  for d in ${deps//,/ }; do add_mod "$d"; done
  order+=("$n")
}
# 9p too, so that vufs.fs=9p works with any initrd; optional for virtiofs (Debian's cloud kernel has no 9p)
if [ "$fs" = 9p ] || [ -n "${modpath[9p]:-}" ]; then wanted+=" 9pnet_virtio 9p"; fi
for m in $wanted; do add_mod "$m"; done

# --- initramfs ---------------------------------------------------------------------------------------------
root=$run/root     # not $run itself: mktemp's 0700 would become the guest's / and lock out other uids
mkdir -p "$root"/{bin,dev,proc,sys,mnt,root,etc,lib/modules} "$root/tmp"
chmod 0755 "$root" "$root"/{bin,dev,proc,sys,mnt,etc,lib,lib/modules}; chmod 0700 "$root/root"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
: >"$root/etc/vufs-modules"
for n in "${order[@]}"; do
  unpack_ko "${modpath[$n]}" >"$root/lib/modules/$n.ko" || die "cannot decompress ${modpath[$n]}"
  echo "$n" >>"$root/etc/vufs-modules"
done
for b in "$@"; do
  if ldd "$b" 2>/dev/null | grep -q '=>'; then note "warning: $b is dynamically linked; it will not run in the guest"; fi
  cp "$b" "$root/bin/"; chmod 0755 "$root/bin/$(basename "$b")"
done
cp "$script" "$root/bin/guest-script"; chmod 0755 "$root/bin/guest-script"
printf '%s\n' "$fs" >"$root/etc/vufs-fs"
printf '%s\n' "$MOUNT_OPTS" >"$root/etc/vufs-mount-opts"
[ "$VIRTIO_FS_DEVICE" = fs ] || echo 1 >"$root/etc/vufs-dax-info"    # always print the DAX info section
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
cat >"$root/bin/runas" <<'RUNAS'
#!/bin/sh
# runas UID[:GID] CMD [ARGS...]: run CMD with numeric uid/gid (gid defaults to uid), no supplementary groups.
[ $# -ge 2 ] || { echo "usage: runas UID[:GID] CMD [ARGS...]" >&2; exit 2; }
u=${1%%:*}; g=${1#*:}; shift
exec nsenter -F -S "$u" -G "$g" -- "$@"
RUNAS
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo      # the firmware's last line may lack its newline
echo GUEST-INIT    # so that a hang is placed before or after the kernel's boot
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs -o mode=1777 tmpfs /dev/shm
while read -r m; do insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"; done </etc/vufs-modules
fs=$(cat /etc/vufs-fs); tag=myfs; opts=$(cat /etc/vufs-mount-opts)
for a in $(cat /proc/cmdline); do
  case $a in vufs.fs=*) fs=${a#*=} ;; vufs.tag=*) tag=${a#*=} ;; esac
done
if [ "$fs" = 9p ]; then
  mount -t 9p -o "trans=virtio,version=9p2000.L,msize=524288${opts:+,$opts}" "$tag" /mnt
else
  mount -t virtiofs ${opts:+-o "$opts"} "$tag" /mnt
fi
mounted=$?
if [ -s /etc/vufs-dax-info ] || dmesg | grep -qi 'cache len'; then
  echo GUEST-DAX-INFO-BEGIN
  dmesg | grep -i -E 'cache len|cache capability|dax'
  grep ' /mnt ' /proc/mounts | sed 's/^/mount: /'
  echo GUEST-DAX-INFO-END
fi
if [ $mounted -eq 0 ]; then
  echo GUEST-MOUNT-OK
  sh /bin/guest-script </dev/null
  echo "GUEST-SCRIPT-EXIT $?"
else
  echo GUEST-MOUNT-FAIL
  dmesg | tail -n 15
fi
sync
umount /mnt 2>/dev/null &      # sends FUSE_DESTROY; never let a stuck unmount keep the guest up
i=0; while kill -0 $! 2>/dev/null && [ $i -lt 50 ]; do usleep 200000; i=$((i + 1)); done
poweroff -n -f                 # -n: no sync(), which would wait for ever behind an unmount that hangs
INIT
chmod 0755 "$root/init" "$root/bin/runas"
initrd=$run/initrd.gz
if [ -n "$PREPARE_ONLY" ] && [ -n "${INITRD:-}" ]; then initrd=$INITRD; fi
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$initrd" || die "cannot build the initrd"
append="console=ttyS0 quiet panic=-1 vufs.fs=$fs${KERNEL_APPEND:+ $KERNEL_APPEND}"

if [ -n "$PREPARE_ONLY" ]; then
  rm -rf "$root"
  [ -n "${INITRD:-}" ] || { keep_run=1; chmod 0755 "$run"; }    # a VMM may run as another user
  echo "$kernel $initrd"
  exit 0
fi

# --- boot ------------------------------------------------------------------------------------------------
qesc() { printf '%s' "${1//,/,,}"; }     # QEMU option values: a comma is written as two
qemu_cmd=(qemu-system-x86_64)
if [ "$QEMU_VERSION" = 11.1 ]; then
  prefix=$("$top/scripts/peers/qemu111.sh" --print-prefix) || die "QEMU 11.1 is not available (scripts/peers/qemu111.sh)"
  mapfile -t qemu_cmd <<<"$prefix"
fi
# shellcheck disable=SC2054   # the commas are inside QEMU option values
qemu=("${qemu_cmd[@]}" -accel tcg -cpu max -smp "$SMP" -m "$MEM" -nographic -no-reboot -nic none
      -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -numa node,memdev=mem
      -kernel "$kernel" -initrd "$initrd" -append "$append")
if [ "$fs" = 9p ]; then
  qemu+=(-virtfs "local,path=$(qesc "$(realpath "$share")"),mount_tag=myfs,security_model=passthrough,id=p9")
else
  if [ "$VIRTIO_FS_DEVICE" = generic ]; then   # hiprio + request queues; config: struct virtio_fs_config
    dev="vhost-user-test-device-pci,chardev=char0,virtio-id=26,num_vqs=$((1 + QUEUES)),config_size=40"
    dev+=",vq_size=${QUEUE_SIZE:-128}"
  else
    dev="vhost-user-fs-pci,chardev=char0,tag=myfs,num-request-queues=$QUEUES"
    [ -z "$QUEUE_SIZE" ] || dev+=",queue-size=$QUEUE_SIZE"
  fi
  [ -z "$DEVICE_OPTS" ] || dev+=",$DEVICE_OPTS"
  qemu+=(-chardev "socket,id=char0,path=$(qesc "$(realpath "$target")")${CHARDEV_OPTS:-}" -device "$dev")
fi
# shellcheck disable=SC2206   # QEMU_ARGS is split on purpose
[ -z "$QEMU_ARGS" ] || qemu+=($QEMU_ARGS)

log=$run/console.log
qemu+=(-pidfile "$qpid")
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
watcher=
if [ -n "$WATCH_PID" ]; then     # a dead backend leaves the guest blocked on /mnt: stop QEMU, don't wait for the timeout
  ( while alive "$WATCH_PID"; do sleep 0.5; done
    sleep 3
    if [ -s "$qpid" ] && alive "$(cat "$qpid")"; then
      note "the backend (pid $WATCH_PID) has exited; stopping QEMU"; kill "$(cat "$qpid")"
    fi ) &
  watcher=$!
fi
# A guest still up shortly before the timeout is asked, through QEMU's monitor, where its CPUs are; printed with
# the failure, that tells a CPU stuck running (HLT=0: firmware below 1 MiB, or the kernel spinning) from a guest
# idle and waiting for an interrupt or reply that never came (HLT=1 on every CPU), and both from a QEMU whose
# main loop is stuck, e.g. waiting for a backend's reply (no answer at all).
mkfifo "$run/monitor.in" "$run/monitor.out"
qemu+=(-monitor "pipe:$run/monitor")
snapshot=
if [ "$GUEST_TIMEOUT" -gt 10 ]; then
  ( trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep $((GUEST_TIMEOUT - 5)) & s=$!; wait "$s"
    printf 'info status\ninfo registers -a\n' >"$run/monitor.in"
    timeout 3 cat "$run/monitor.out" >"$run/hang-state.txt" ) >/dev/null 2>&1 &
  snapshot=$!
fi
start=$SECONDS
# In the background and waited for, so that INT/TERM reach our traps (and cleanup stops QEMU) at once.
( set +e
  timeout --foreground -k 10 "$GUEST_TIMEOUT" "${qemu[@]}" </dev/null |
    sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' \
           -e '/^SeaBIOS (version/d' -e '/^Booting from ROM\.*$/d' | tee "$log"   # no CRs, no firmware noise
  echo "${PIPESTATUS[0]}" >"$run/qemu.rc" ) &
guestjob=$!
wait "$guestjob" || true
guestjob=''
rm -f "$qpid"
[ -z "$snapshot" ] || { kill "$snapshot" 2>/dev/null; wait "$snapshot" 2>/dev/null; } || true
qrc=$(cat "$run/qemu.rc" 2>/dev/null || echo '?')
took=$((SECONDS - start))
case $qrc in 124|137) note "QEMU killed after the ${GUEST_TIMEOUT}s timeout" ;; esac

rc=$(grep -o 'GUEST-SCRIPT-EXIT [0-9]*' "$log" | tail -1 | cut -d' ' -f2) || true
if grep -q GUEST-MOUNT-FAIL "$log"; then
  note "the guest could not mount the export ($fs) (${took}s)"; exit 2
elif [ -z "$rc" ]; then
  if ! grep -q '^GUEST-INIT$' "$log"; then where="before its init ran (kernel boot, or QEMU stalled)"
  elif ! grep -q -e GUEST-MOUNT-OK -e GUEST-MOUNT-FAIL "$log"; then where="in its mount"
  else where="in its script"; fi
  note "no GUEST-SCRIPT-EXIT seen: guest crashed or hung $where, or QEMU failed (QEMU exit $qrc, ${took}s)"
  if [ -f "$run/hang-state.txt" ]; then
    note "its CPUs $((GUEST_TIMEOUT - 5))s after the start, from QEMU's monitor (no lines: QEMU did not answer):"
    grep -a -E '^(VM status|CPU#|RIP=)' "$run/hang-state.txt" | sed 's/^/  /' >&2
  fi
  exit 3
fi
note "guest script exited $rc (${took}s)"
exit "$rc"
