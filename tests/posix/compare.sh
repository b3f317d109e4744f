#!/usr/bin/env bash
# compare.sh REFERENCE RESULT KEY...: differences between two vufs-posix outputs that are not listed for
# any of the KEYs (e.g. "vufsd vufsd:never") in known-limits.txt. Prints them and exits 1 if there are any.
set -uo pipefail
ref=$1 out=$2; shift 2
known=$(for key in "$@"; do awk -v b="$key" '$1 == b { print $2 }' "$(dirname "$0")/known-limits.txt"; done)
bad=0
while read -r verdict name rest; do
  case $verdict in PASS|FAIL|SKIP) ;; *) continue ;; esac
  name=${name%:}
  want=$(awk -v n="$name" '{ c = $2; sub(/:$/, "", c) } c == n { print $1; exit }' "$ref")
  [ "$verdict" = "$want" ] && continue
  if grep -qx "$name" <<<"$known"; then
    echo "known limit: $verdict $name (reference: $want)"
  else
    echo "DIFFERENT: $verdict $name $rest (reference: ${want:-missing})"; bad=1
  fi
done < "$out"
grep -q '^RESULT' "$out" || { echo "DIFFERENT: no RESULT line (the run died)"; bad=1; }
exit $bad
