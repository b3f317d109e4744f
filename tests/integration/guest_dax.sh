#!/usr/bin/env bash
# The DAX window in a real guest: Debian bookworm's 6.1 kernel and its virtiofs driver on QEMU 11.1.3 (Debian sid's,
# fetched by scripts/peers/qemu111.sh; its generic vhost-user-test-device-pci gives the guest the window vufsd sizes
# with --dax-window), TCG. vufsd is the plain build in its default confinement (namespace sandbox, seccomp=kill),
# as users run it.
# Boot 1, mounted dax=always, asserts:
#   - the guest found the window ("Cache len" in its kernel log) and mounted with dax=always;
#   - files of 0, 1, 4095, 4096, 4097, 2M-1, 2M, 2M+1 and 5M+3 bytes read back in the guest with the host's sha256
#     (every size around a page and a range: the partial last page is a copy, the rest the file's own pages), and
#     no read changed a host file's size;
#   - shared mmap is coherent without invalidation: a store through the guest's mapping is in the host file before
#     the guest syncs anything, and a host write shows up in the guest's unchanged mapping (vufs-daxmap);
#   - non-extending writes and appends made in the guest are in the host file after the guest's sync;
#   - the guest's page cache does not hold DAX file data: reading a 64 MiB file grows "Cached" by < 8 MiB;
#   - vufs-fsx (reads, writes, truncates, mmap, fallocate, copy_file_range against a model) passes on the window;
#   - vufsd logged that it mapped and removed ranges, and exits 0 after the poweroff.
# Boot 2, mounted dax=inode with vufsd's default --dax-files=page: a 16 MiB file (whole pages) is read through the
# window (Cached grows < 8 MiB) and a 16 MiB + 1 byte file through the page cache (Cached grows > 12 MiB); both
# read back with the host's sha256.
# Boot 3, Debian sid's 7.2 kernel mounted dax=always: the files read back equal, shared mmap is coherent, fsx passes.
# Skips when Debian sid's QEMU cannot be fetched (no network to the archive).
# timeout: 600
set -uo pipefail
TESTDIR_PREFIX=vufs-guest-dax
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
VUFSD=$VUFS_BUILD/vufsd DAXMAP=$VUFS_BUILD/vufs-daxmap FSX=$VUFS_BUILD/vufs-fsx
export GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$VUFSD" ] && [ -x "$DAXMAP" ] && [ -x "$FSX" ] || fail "build first: make all"
[ "$(id -u)" = 0 ] || skip "must run as root"
need_pkgs busybox-static cpio xz-utils || fail "cannot install the guest's packages"
"$VUFS_ROOT/scripts/peers/qemu111.sh" --version >"$TESTDIR/qemu-version.txt" 2>&1
case $? in
  0) echo "== $(head -1 "$TESTDIR/qemu-version.txt")" ;;
  3) skip "QEMU 11.1 unavailable: $(tail -1 "$TESTDIR/qemu-version.txt")" ;;
  *) cat "$TESTDIR/qemu-version.txt"; fail "scripts/peers/qemu111.sh failed" ;;
esac
problems=()
t0=$SECONDS

# ---- the share ------------------------------------------------------------------------------------------------
share=$TESTDIR/share
mkdir -p "$share/flags" "$share/fsx"
sizes=(0 1 4095 4096 4097 2097151 2097152 2097153 5242883)
for s in "${sizes[@]}"; do head -c "$s" /dev/urandom >"$share/f_$s"; done
head -c 67108864 /dev/urandom >"$share/big"
head -c 16777216 /dev/urandom >"$share/pages16m"
head -c 16777217 /dev/urandom >"$share/odd16m"
head -c 8192 /dev/zero >"$share/coh"
printf 'abcdefghij%.0s' $(seq 1 1000) >"$share/w"   # 10000 bytes: a copied tail page
(cd "$share" && sha256sum f_* pages16m odd16m) >"$TESTDIR/host.sha256"
sizes_before=$(cd "$share" && stat -c '%n %s' f_* | sort)

# The host half of vufs-daxmap's exchange: check the guest's store, answer with a write of our own.
host_side() {
  local i
  for i in $(seq 1 900); do [ -e "$share/flags/guest-stored" ] && break; sleep 0.2; done
  if [ "$(dd if="$share/coh" bs=1 skip=100 count=11 2>/dev/null)" = GUEST-STORE ]; then
    echo "host saw the guest's store" >"$TESTDIR/host-side.txt"
  else
    echo "host did NOT see the guest's store: '$(dd if="$share/coh" bs=1 skip=100 count=11 2>/dev/null | od -c | head -2)'" \
      >"$TESTDIR/host-side.txt"
  fi
  printf HOST-WRITE | dd of="$share/coh" bs=1 seek=200 conv=notrunc 2>/dev/null
  touch "$share/flags/host-wrote"
}

# The host truncates a file the guest reads through mmap (vufs-daxmap --read-loop), 1 s after it mapped it.
host_truncate() {   # name
  local i t0 t1
  for i in $(seq 1 1500); do [ -e "$share/flags/mapped" ] && break; sleep 0.2; done
  if [ ! -e "$share/flags/mapped" ]; then echo "the guest never mapped the file" >"$TESTDIR/trunc-$1.txt"; return; fi
  sleep 1
  # truncate(2) by path: it waits for the lease break (coreutils' truncate opens O_NONBLOCK, and a lease makes
  # that open fail with EAGAIN while vufsd turns the ranges into copies: see the README).
  t0=$(date +%s%N); perl -e 'truncate($ARGV[0], 4096) or die "truncate: $!\n"' "$share/trunc8m"; t1=$(date +%s%N)
  echo "host truncate took $(( (t1 - t0) / 1000000 )) ms" >"$TESTDIR/trunc-$1.txt"
}
make_trunc_file() {
  rm -f "$share/flags/mapped"; head -c 8388608 /dev/urandom >"$share/trunc8m"
  trunc_sum=$(head -c 4096 "$share/trunc8m" | sha256sum | cut -d' ' -f1)
}
# The guest's half: read through the mapping while the host truncates, then the file as it is now.
GUEST_TRUNC='vufs-daxmap --read-loop /mnt/trunc8m /mnt/flags 6
sleep 1.5; echo "TRUNC-AFTER $(stat -c %s /mnt/trunc8m) $(sha256sum < /mnt/trunc8m | cut -d" " -f1)"'
check_trunc() {   # name: QEMU and the guest lived through the host's truncation, which waited for vufsd only
  local c=$TESTDIR/console-$1.txt ms
  echo "== $1: $(cat "$TESTDIR/trunc-$1.txt" 2>/dev/null); $(grep -m1 '^DAXREAD' "$c"); $(grep -m1 '^TRUNC-AFTER' "$c")"
  grep -q '^DAXREAD passes [1-9]' "$c" || problems+=("$1: the guest's reads through the mapping did not go on")
  grep -q "^TRUNC-AFTER 4096 $trunc_sum" "$c" ||
    problems+=("$1: after the host's truncation the guest does not read the file's 4096 bytes")
  grep -q 'truncates it: its ranges are copies now' "$TESTDIR/vufsd-$1.log" ||
    problems+=("$1: vufsd did not turn the truncated file's ranges into copies (no lease break)")
  ms=$(sed -n 's/^host truncate took \([0-9]*\) ms/\1/p' "$TESTDIR/trunc-$1.txt")
  [ -n "$ms" ] && [ "$ms" -lt 10000 ] || problems+=("$1: the host's truncate: $(cat "$TESTDIR/trunc-$1.txt")")
}

boot() {   # name mount-opts guest-script [guest.sh options...]
  local name=$1 opts=$2 script=$3; shift 3
  SOCK=$TESTDIR/$name.sock BACKEND_LOG=$TESTDIR/vufsd-$name.log
  local grc attempt
  for attempt in 1 2; do
    # shellcheck disable=SC2086
    start_backend "$VUFSD" --socket-path="$SOCK" --shared-dir="$share" --tag=myfs --dax-window=64M \
      --cache=auto --log-level=${VUFSD_LOG_LEVEL:-info} ${VUFSD_EXTRA:-} ||
      { cat "$BACKEND_LOG"; fail "$name: vufsd did not start"; }
    grc=0
    "$GUEST" --qemu 11.1 --device generic --mount-opts "$opts" "$@" "$SOCK" "$script" "$DAXMAP" "$FSX" \
      >"$TESTDIR/console-$name.txt" 2>"$TESTDIR/guest-$name.err" || grc=$?
    boot_crashed $grc "$TESTDIR/console-$name.txt" && [ $attempt = 1 ] || break
    echo "== $name: the guest kernel died while booting: once more"
    wait_backend_exit 20 || stop_backend 5 || true
  done
  if [ $grc -ne 0 ]; then
    sed -n '/GUEST-MOUNT/,$p' "$TESTDIR/console-$name.txt" | tail -n 40; tail -n 20 "$TESTDIR/guest-$name.err"
    problems+=("$name: guest.sh exit $grc")
  fi
  if wait_backend_exit 20; then
    [ "$BACKEND_STATUS" -eq 0 ] || problems+=("$name: vufsd $(status_text "$BACKEND_STATUS") after the poweroff")
  else
    problems+=("$name: vufsd still running 20s after the poweroff"); stop_backend 5 || true
  fi
}

cached_kb() {   # console name: "CACHED label before after" lines -> growth in KiB for label
  awk -v l="$2" '$1 == "CACHED" && $2 == l { print $4 - $3 }' "$TESTDIR/console-$1.txt"
}

# ---- boot 1: dax=always ---------------------------------------------------------------------------------------
cat >"$TESTDIR/guest-always.sh" <<'EOF'
cd /mnt
echo SHA-BEGIN; sha256sum f_* pages16m odd16m; echo SHA-END
vufs-daxmap /mnt/coh /mnt/flags 60
sync; echo 3 > /proc/sys/vm/drop_caches
b=$(awk '/^Cached:/ {print $2}' /proc/meminfo); cat /mnt/big > /dev/null
a=$(awk '/^Cached:/ {print $2}' /proc/meminfo); echo "CACHED big $b $a"
printf 'XYZ' | dd of=/mnt/w bs=1 seek=5 conv=notrunc 2>/dev/null
printf 'TAIL' | dd of=/mnt/w bs=1 seek=9990 conv=notrunc 2>/dev/null
printf 'APPENDED' >> /mnt/w
sync
vufs-fsx -q -n 3000 -s 7 /mnt/fsx; echo "FSX-EXIT $?"
EOF
host_side & hs=$!
# Shared coherence: the host's write shows up in the guest's mapping at once (no lease; boots 2 and 3 are guarded).
VUFSD_EXTRA=--dax-coherence=shared boot always dax=always "$TESTDIR/guest-always.sh"
wait $hs 2>/dev/null
c=$TESTDIR/console-always.txt
grep -q 'GUEST-MOUNT-OK' "$c" || problems+=("always: the guest did not mount with dax=always")
grep -qi 'cache len' "$c" || problems+=("always: no 'Cache len' in the guest's kernel log: no window")
sed -n '/^SHA-BEGIN/,/^SHA-END/p' "$c" | grep -v '^SHA-' | sed 's/ \/mnt\// /' >"$TESTDIR/guest.sha256"
if diff <(sort "$TESTDIR/host.sha256") <(sort "$TESTDIR/guest.sha256") >"$TESTDIR/sha.diff"; then
  echo "== always: $(wc -l <"$TESTDIR/guest.sha256") files read back equal"
else
  cat "$TESTDIR/sha.diff"; problems+=("always: files read in the guest differ from the host's")
fi
[ "$(cd "$share" && stat -c '%n %s' f_* | sort)" = "$sizes_before" ] || problems+=("always: a host file changed size")
grep -q '^DAXMAP OK' "$c" || problems+=("always: shared mmap not coherent: $(grep -m1 '^DAXMAP' "$c")")
grep -q 'host saw the guest' "$TESTDIR/host-side.txt" 2>/dev/null ||
  problems+=("always: $(cat "$TESTDIR/host-side.txt" 2>/dev/null || echo 'host side never ran')")
echo "== always: $(grep -m1 '^DAXMAP' "$c"); $(cat "$TESTDIR/host-side.txt" 2>/dev/null)"
g=$(cached_kb always big)
echo "== always: reading a 64 MiB file grew the guest's page cache by ${g:-?} KiB"
[ -n "$g" ] && [ "$g" -lt 8192 ] || problems+=("always: the guest's page cache grew by ${g:-?} KiB reading DAX data")
want=$(python3 -c "import hashlib; s = bytearray(b'abcdefghij' * 1000); s[5:8] = b'XYZ'; s[9990:9994] = b'TAIL'
print(hashlib.sha256(bytes(s) + b'APPENDED').hexdigest())")
[ "$(sha256sum <"$share/w" | cut -d' ' -f1)" = "$want" ] || problems+=("always: guest writes not in the host file as expected")
grep -q '^FSX OK' "$c" && grep -q '^FSX-EXIT 0' "$c" || problems+=("always: fsx: $(grep -m1 '^FSX' "$c" || echo 'no FSX line')")
grep -q 'ranges mapped' "$TESTDIR/vufsd-always.log" && echo "== always: vufsd: $(grep -m1 -o 'dax: [0-9]* ranges mapped and [0-9]* removed' "$TESTDIR/vufsd-always.log")"
grep -qE 'dax: [1-9][0-9]* ranges mapped and [1-9]' "$TESTDIR/vufsd-always.log" ||
  problems+=("always: vufsd did not map and remove ranges")

# ---- boot 2: dax=inode ----------------------------------------------------------------------------------------
cat >"$TESTDIR/guest-inode.sh" <<'EOF'
cd /mnt
for f in pages16m odd16m; do
  sync; echo 3 > /proc/sys/vm/drop_caches
  b=$(awk '/^Cached:/ {print $2}' /proc/meminfo); sum=$(sha256sum $f)
  a=$(awk '/^Cached:/ {print $2}' /proc/meminfo); echo "CACHED $f $b $a"; echo "SUM $sum"
done
EOF
echo "$GUEST_TRUNC" >>"$TESTDIR/guest-inode.sh"
make_trunc_file
host_truncate inode & ht=$!
boot inode dax=inode "$TESTDIR/guest-inode.sh"
wait $ht 2>/dev/null
check_trunc inode
c=$TESTDIR/console-inode.txt
for f in pages16m odd16m; do
  grep -q "^SUM $(grep " $f\$" "$TESTDIR/host.sha256" | cut -d' ' -f1)" "$c" || problems+=("inode: $f read back wrong")
done
gp=$(cached_kb inode pages16m) go=$(cached_kb inode odd16m)
echo "== inode: page cache growth: 16 MiB file ${gp:-?} KiB (DAX), 16 MiB + 1 ${go:-?} KiB (not DAX)"
[ -n "$gp" ] && [ "$gp" -lt 8192 ] || problems+=("inode: the whole-page file went through the page cache (${gp:-?} KiB)")
[ -n "$go" ] && [ "$go" -gt 12288 ] || problems+=("inode: the odd-size file did not go through the page cache (${go:-?} KiB)")

# ---- boot 3: the 7.2 kernel, dax=always -----------------------------------------------------------------------
rm -f "$share/flags/"*; head -c 8192 /dev/zero >"$share/coh"; rm -rf "$share/fsx"; mkdir "$share/fsx"
cat >"$TESTDIR/guest-sid.sh" <<'GEOF'
cd /mnt
echo "KERNEL $(uname -r)"
echo SHA-BEGIN; sha256sum f_* pages16m odd16m; echo SHA-END
vufs-daxmap /mnt/coh /mnt/flags 60 stat
vufs-fsx -q -n 2000 -s 11 /mnt/fsx; echo "FSX-EXIT $?"
GEOF
echo "$GUEST_TRUNC" >>"$TESTDIR/guest-sid.sh"
make_trunc_file
host_side & hs=$!
host_truncate sid & ht=$!
boot sid dax=always "$TESTDIR/guest-sid.sh" --kernel sid
wait $hs $ht 2>/dev/null
check_trunc sid
c=$TESTDIR/console-sid.txt
echo "== sid: kernel $(sed -n 's/^KERNEL //p' "$c" | head -1)"
sed -n '/^SHA-BEGIN/,/^SHA-END/p' "$c" | grep -v '^SHA-' | sed 's| /mnt/| |' >"$TESTDIR/guest-sid.sha256"
diff <(sort "$TESTDIR/host.sha256") <(sort "$TESTDIR/guest-sid.sha256") || problems+=("sid: files read in the 7.2 guest differ")
grep -q '^DAXMAP OK' "$c" || problems+=("sid: shared mmap not coherent: $(grep -m1 '^DAXMAP' "$c")")
grep -q '^FSX OK' "$c" && grep -q '^FSX-EXIT 0' "$c" || problems+=("sid: fsx: $(grep -m1 '^FSX' "$c" || echo 'no FSX line')")
echo "== sid: $(grep -m1 '^DAXMAP' "$c"); $(grep -m1 '^FSX' "$c")"

echo "== total $((SECONDS - t0))s"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "guest_dax: ok"
