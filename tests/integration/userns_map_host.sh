#!/usr/bin/env bash
# vufsd started by an unprivileged user (one with a subordinate id range in /etc/subuid and /etc/subgid) in its
# default namespace sandbox with --uid-map/--gid-map, as virtiofsd 1.14: it serves as root of a user namespace
# whose ids are the mapped host ranges (newuidmap/newgidmap from the uidmap package). Through vufs-mount: a file
# the guest's uid 0 creates lands as the first mapped host id, one of guest uid 5 as that id + 5, one of guest uid
# 5003 through the second range, and one of a guest uid no range maps is EPERM (chown to it EINVAL); host owners in
# the ranges are seen shifted back, an unmapped owner as 65534;
# the daemon's outer process keeps the user's ids and removes the socket at exit. With no maps the user's own ids
# are mapped to themselves. The guest's O_NOATIME on a file of an unmapped owner works by default and is EPERM
# with --preserve-noatime (virtiofsd's reason for dropping it). Bad maps (format, count 0, overflow, overlap, a
# range /etc/subuid does not grant, as root, without the namespace sandbox, uid 0 mapped with only the user's own
# gid) are refused with a message.
# timeout: 180
BUILD=${VUFS_BUILD:-$PWD/build}   # the sandbox: LeakSanitizer cannot run inside it (lib.sh)
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (creates a user, mounts)"
need_pkgs uidmap || fail "cannot install the uidmap package (newuidmap, newgidmap)"
NAME=vufsmap$$ BASE=3000000
useradd -M -U -s /usr/sbin/nologin "$NAME" || fail "useradd $NAME"
drop_user() {
  userdel "$NAME" 2>/dev/null
  sed -i "/^$NAME:/d" /etc/subuid /etc/subgid
}
trap 'cleanup; drop_user' EXIT
echo "$NAME:$BASE:65536" >>/etc/subuid
echo "$NAME:$BASE:65536" >>/etc/subgid
USR=$(id -u "$NAME") GRP=$(id -g "$NAME")

chmod 755 "$SCRATCH"
mkdir "$SCRATCH/run" && chown "$USR:$GRP" "$SCRATCH/run"
SOCK=$SCRATCH/run/vhost.sock
chown "$BASE:$BASE" "$SHARE"     # the namespace's root owns the share
MAPS=(--uid-map=:0:$BASE:1000: --uid-map=:5000:$((BASE + 1000)):1000: --gid-map=:0:$BASE:1000:
      --gid-map=/5000/$((BASE + 1000))/1000/)

AS_USER=(setpriv --reuid="$USR" --regid="$GRP" --clear-groups)

start_unprivileged() {
  "${AS_USER[@]}" "$BUILD/vufsd" --socket-path="$SOCK" --shared-dir="$SHARE" --seccomp=kill "$@" >"$SCRATCH/backend.log" 2>&1 &
  BACKEND_PID=$!
  wait_for 10 test -S "$SOCK" || { cat "$SCRATCH/backend.log"; fail "vufsd did not create its socket"; }
}

server_pid() {   # the serving process: the grandchild (user namespace, then pid namespace)
  pgrep -P "$(pgrep -P "$BACKEND_PID" | head -1)" | head -1
}

owner() { stat -c %u:%g "$1"; }
expect_owner() {   # path uid:gid what
  [ "$(owner "$1")" = "$2" ] || fail "$3: $1 is owned by $(owner "$1"), expected $2"
}

# --- the maps at work
start_unprivileged "${MAPS[@]}"
mount_backend -o allow_other
pid=$(server_pid)
[ -n "$pid" ] || fail "no serving process under $BACKEND_PID"
[ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ] || fail "the daemon is not in a user namespace"
[ "$(awk '{ print $1, $2, $3 }' /proc/$pid/uid_map | tr '\n' ' ')" = "0 $BASE 1000 5000 $((BASE + 1000)) 1000 " ] ||
  fail "uid_map: $(cat /proc/$pid/uid_map)"
grep -q "^Uid:[[:space:]]*$BASE[[:space:]]" /proc/$pid/status || fail "the daemon is not root of its namespace"
grep -q "^Uid:[[:space:]]*$USR[[:space:]]" /proc/$BACKEND_PID/status || fail "the outer process left the user's uid"
grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status || fail "no seccomp filter"

touch "$MNT/by-root"
expect_owner "$SHARE/by-root" "$BASE:$BASE" "created by guest uid 0"
mkdir "$MNT/open" && chmod 1777 "$MNT/open"
setpriv --reuid=5 --regid=6 --clear-groups touch "$MNT/open/by-5" || fail "guest uid 5 cannot create"
expect_owner "$SHARE/open/by-5" "$((BASE + 5)):$((BASE + 6))" "created by guest uid 5"
setpriv --reuid=5003 --regid=5004 --clear-groups touch "$MNT/open/by-5003" || fail "guest uid 5003 cannot create"
expect_owner "$SHARE/open/by-5003" "$((BASE + 1003)):$((BASE + 1004))" "created by guest uid 5003 (second range)"
out=$(setpriv --reuid=3000 --regid=3000 --clear-groups touch "$MNT/open/by-3000" 2>&1) &&
  fail "guest uid 3000, which no range maps, created a file"
echo "$out" | grep -q "Operation not permitted" || fail "creation by an unmapped guest uid: expected EPERM, got: $out"

touch "$SHARE/host-5" "$SHARE/host-1005" "$SHARE/host-unmapped"
chown "$((BASE + 5)):$((BASE + 7))" "$SHARE/host-5"
chown "$((BASE + 1005)):$((BASE + 1005))" "$SHARE/host-1005"
chown 4242:4242 "$SHARE/host-unmapped"
expect_owner "$MNT/host-5" "5:7" "host file of $((BASE + 5)):$((BASE + 7))"
expect_owner "$MNT/host-1005" "5005:5005" "host file of $((BASE + 1005)) (second range)"
expect_owner "$MNT/host-unmapped" "65534:65534" "host file of an unmapped owner"
out=$(chown 3000 "$MNT/by-root" 2>&1) && fail "chown to an id with no host id succeeded"
echo "$out" | grep -q "Invalid argument" || fail "chown to an unmapped id: expected EINVAL, got: $out"
expect_owner "$SHARE/by-root" "$BASE:$BASE" "after a refused chown"
chown 7 "$MNT/by-root" || fail "chown to guest uid 7"
expect_owner "$SHARE/by-root" "$((BASE + 7)):$BASE" "chown to guest uid 7"
echo hello >"$SHARE/host-unmapped"
dd if="$MNT/host-unmapped" of=/dev/null iflag=noatime status=none ||
  fail "O_NOATIME on a file of an unmapped owner (vufsd drops it by default)"
finish
[ -e "$SOCK" ] && fail "socket file left behind"

# --- --preserve-noatime passes O_NOATIME on: root of the namespace has no CAP_FOWNER over an unmapped owner
start_unprivileged "${MAPS[@]}" --preserve-noatime --cache=never
mount_backend -o allow_other
out=$(dd if="$MNT/host-unmapped" of=/dev/null iflag=noatime status=none 2>&1) &&
  fail "--preserve-noatime: O_NOATIME on a file of an unmapped owner succeeded"
echo "$out" | grep -q "Operation not permitted" || fail "--preserve-noatime: expected EPERM, got: $out"
finish

# --- no maps: the user's own ids, mapped to themselves (virtiofsd's default); no uid 0, so a warning
start_unprivileged
mount_backend -o allow_other
pid=$(server_pid)
[ "$(awk '{ print $1, $2, $3 }' /proc/$pid/uid_map)" = "$USR $USR 1" ] || fail "default uid_map: $(cat /proc/$pid/uid_map)"
grep -q "uid 0 is not mapped" "$SCRATCH/backend.log" || fail "no warning that uid 0 is not mapped"
finish

# --- refused
refused() {   # expected-exit message-part command...
  local rc=$1 says=$2; shift 2
  "$@" --socket-path="$SOCK" --shared-dir="$SHARE" >"$SCRATCH/refused.log" 2>&1
  local got=$?
  [ $got -eq "$rc" ] || { cat "$SCRATCH/refused.log"; fail "$*: exit $got, expected $rc"; }
  grep -q -- "$says" "$SCRATCH/refused.log" || { cat "$SCRATCH/refused.log"; fail "$*: no '$says'"; }
  [ -e "$SOCK" ] && fail "$*: socket file left behind"
  return 0
}
refused 2 "COUNT must be at least 1" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:0:$BASE:0:
refused 2 "separator" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=0:$BASE:10
refused 2 "three numbers" "${AS_USER[@]}" "$BUILD/vufsd" --gid-map=:0:$BASE:10:5:
refused 2 "three numbers" "${AS_USER[@]}" "$BUILD/vufsd" --gid-map=:0:-1:10:
refused 2 "past id 4294967294" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:4294967290:$BASE:10:
refused 2 "overlaps the earlier range" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:0:$BASE:10: --uid-map=:5:$((BASE + 100)):10:
refused 2 "overlaps the earlier range" "${AS_USER[@]}" "$BUILD/vufsd" --gid-map=:0:$BASE:10: --gid-map=:100:$((BASE + 9)):1:
refused 1 "not allowed" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:0:$((BASE + 65536)):10: --gid-map=:0:$BASE:10:
refused 2 "gid map of only your own gid" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:0:$BASE:10:
refused 2 "gid map of only your own gid" "${AS_USER[@]}" "$BUILD/vufsd" --uid-map=:0:$BASE:10: --gid-map=:0:$GRP:1:
refused 1 "newgidmap refused" "${AS_USER[@]}" "$BUILD/vufsd" --gid-map=:0:1:1:
refused 2 "need --sandbox=namespace" "${AS_USER[@]}" "$BUILD/vufsd" --sandbox=none --uid-map=:0:$BASE:10:
refused 2 "for an unprivileged vufsd" "$BUILD/vufsd" --uid-map=:0:$BASE:10:
echo ok
