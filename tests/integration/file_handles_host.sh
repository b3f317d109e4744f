#!/usr/bin/env bash
# --inode-file-handles through vufs-mount:
#  (a) the POSIX test program on vufsd --inode-file-handles=mandatory (cache=auto) gives the native results but for
#      the known limits ("handles" lists the ones file handles add);
#  (b) a tree of 200,000 files (200 directories x 1,000, made on the host) walked with find -printf (a stat of
#      each) once with never and once with prefer, each on a fresh mount, while the mount still holds every
#      lookup: never keeps an fd per inode (>= 200,000, or its open-file limit when that is lower: the walk then
#      fails with EMFILE), prefer holds fewer than 1,000 and sees every file. A 15,000-file part is walked first
#      in both modes (it fits under any limit here) to compare the cost per lookup. Times are printed.
# timeout: 300
. "$(dirname "$0")/lib.sh"

start_vufsd --inode-file-handles=mandatory --cache=auto --xattr
mount_backend -o allow_other
posix_through "vufsd-handles-mandatory" "vufsd vufsd:auto vufsd:handles"
finish
rm -rf "${SHARE:?}"/*

# 15 directories under small/ and 185 under big/, 1,000 empty files each.
python3 - "$SHARE" <<'EOF' || fail "making the tree"
import os, sys
root = sys.argv[1]
for part, ndirs in (("small", 15), ("big", 185)):
    for d in range(ndirs):
        path = os.path.join(root, part, "d%03d" % d)
        os.makedirs(path)
        for f in range(1000):
            os.close(os.open(os.path.join(path, "f%04d" % f), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
total=200000

walk() {   # dir: prints "files seconds" (files: stat'ed regular files found)
  local t0 t1 n
  t0=$(date +%s.%N)
  n=$(find "$1" -type f -printf '%s %i\n' 2>"$SCRATCH/find.err" | wc -l)
  t1=$(date +%s.%N)
  echo "$n $(echo "$t1 - $t0" | bc)"
}

for mode in never prefer; do
  start_vufsd --inode-file-handles=$mode --cache=auto
  mount_backend
  limit=$(awk '/Max open files/ {print $4}' "/proc/$BACKEND_PID/limits")
  read -r n_small t_small < <(walk "$MNT/small")
  [ "$n_small" -eq 15000 ] || fail "$mode: the 15,000-file part: $n_small files"
  read -r n_all t_all < <(walk "$MNT")
  fds=$(ls "/proc/$BACKEND_PID/fd" | wc -l)
  errs=$(grep -c . "$SCRATCH/find.err")
  echo "$mode: 15,000 files in ${t_small} s ($(echo "scale=1; $t_small * 1000000 / 15000" | bc) us each);" \
       "all: $n_all of $total files in ${t_all} s, $errs errors; vufsd holds $fds fds (limit $limit)"
  case $mode in
    never)
      if [ "$limit" -gt $((total + 1000)) ]; then
        [ "$n_all" -eq $total ] || fail "never: $n_all files"
        [ "$fds" -ge $total ] || fail "never: only $fds fds for $total inodes"
      else
        # Not enough fds for one per inode: vufsd holds as many as it may, and the guest sees EMFILE.
        [ "$fds" -ge $((limit - 200)) ] || fail "never: $fds fds, far below the limit $limit"
        [ "$n_all" -lt $total ] && grep -q "Too many open files" "$SCRATCH/find.err" ||
          fail "never: $n_all files without EMFILE under a limit of $limit"
        head -2 "$SCRATCH/find.err"
      fi ;;
    prefer)
      [ "$n_all" -eq $total ] || { head "$SCRATCH/find.err"; fail "prefer: $n_all of $total files"; }
      [ "$errs" -eq 0 ] || fail "prefer: find reported errors"
      [ "$fds" -lt 1000 ] || fail "prefer: $fds fds for $total inodes" ;;
  esac
  finish
done
