#!/usr/bin/env bash
# What each cache mode shows of a change made on the host: never at once, auto within its 1 s timeout,
# always keeps what it cached (the guest is trusted to be the only writer); metadata keeps the size it cached but
# reads the file's data from the host every time.
# timeout: 120
. "$(dirname "$0")/lib.sh"

size_seen() { stat -c %s "$MNT/f"; }

for cache in never auto always metadata; do
  echo 1234 > "$SHARE/f"
  start_vufsd --cache=$cache
  mount_backend
  [ "$(size_seen)" = 5 ] || fail "$cache: first size"
  echo 56789 >> "$SHARE/f"                      # 11 bytes now, changed behind the guest's back
  now=$(size_seen); sleep 1.5; later=$(size_seen)
  echo "cache=$cache: size seen at once $now, after 1.5 s $later"
  case $cache in
    never)  [ "$now" = 11 ] || fail "never: the host change is not seen at once" ;;
    auto)   [ "$later" = 11 ] || fail "auto: the host change is not seen after the 1 s timeout" ;;
    always) [ "$later" = 5 ] || fail "always: expected the cached size to be kept" ;;
    metadata) [ "$later" = 5 ] || fail "metadata: expected the cached size to be kept"
              printf 'abcd' | dd of="$SHARE/f" conv=notrunc status=none   # same size, new bytes
              [ "$(head -c 4 "$MNT/f")" = abcd ] || fail "metadata: file data was cached" ;;
  esac
  finish
  rm -f "$SHARE/f"
done
