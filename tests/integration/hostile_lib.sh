# Shared by the hostile_*.sh tests (sourced after lib.sh; not a test itself).
# Runs build/vufs-hostile against a backend, one check per backend instance (vufsd and both virtiofsd serve one
# connection each), and judges each check from both sides: the client's verdict, plus what the backend process did
# (exit status, signal, sanitizer report, assertion or Rust panic, or not exiting after the frontend went away).
#
#   hostile_run LABEL RESULTS backend-command...   the command must listen on $SOCK and share $SHARE
#   hostile_save LABEL RESULTS TITLE NAME SETUP    keeps a backend's results for the report (build/hostile-results)
#   hostile_report                                 writes build/hostile-report.md from the kept results
#
# RESULTS gets one line per check: name<TAB>PASS|FAIL|SKIP<TAB>reason<TAB>what the backend did (notes).

HOSTILE=${VUFS_BUILD:-$PWD/build}/vufs-hostile
[ -x "$HOSTILE" ] || skip "$HOSTILE is not built"
HOSTILE_LOGS=$SCRATCH/hostile-logs
mkdir -p "$HOSTILE_LOGS"

# A canary of our own next to the share (the client plants and checks its own too).
HOSTILE_CANARY=$SCRATCH/outside-canary
head -c 4096 /dev/urandom > "$HOSTILE_CANARY"
HOSTILE_CANARY_SUM=$(sha256sum < "$HOSTILE_CANARY")
chmod 0640 "$HOSTILE_CANARY"

hostile_host_intact() {   # prints what changed outside the share, if anything
  [ -f "$HOSTILE_CANARY" ] || { echo "$HOSTILE_CANARY disappeared"; return 1; }
  [ "$(sha256sum < "$HOSTILE_CANARY")" = "$HOSTILE_CANARY_SUM" ] || { echo "$HOSTILE_CANARY was modified"; return 1; }
  [ "$(stat -c %a "$HOSTILE_CANARY")" = 640 ] || { echo "$HOSTILE_CANARY changed mode"; return 1; }
  local stray
  stray=$(find "$SCRATCH" /tmp -maxdepth 1 -name 'vufs-hostile-esc*' 2>/dev/null | head -1)
  [ -z "$stray" ] || { echo "$stray was created outside the share"; return 1; }
  return 0
}

# One line: the first sanitizer report, assertion or libvhost-user panic in a backend log.
# A Rust panic ("thread 'x' panicked at FILE:LINE:COL:" and the message on the next line) counts as an assertion.
hostile_log_event() {
  local panic
  panic=$(grep -m1 -A1 -E "panicked at " "$1" | sed -E 's/^.*(panicked at )/\1/' | paste -sd ' ' -)
  [ -n "$panic" ] && { cut -c1-160 <<<"$panic"; return; }
  grep -m1 -E "ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|Assertion .* failed" "$1" |
    sed -E 's/^.*(ERROR: |runtime error: )/\1/; s/^.*(Assertion)/\1/' | cut -c1-160
}

# The signal the backend died from, or nothing: the Rust virtiofsd's namespace sandbox serves from a child and its
# parent, instead of dying from the same signal, logs "Child process terminated by signal N" and exits with 256-N.
hostile_death_signal() {   # exit-status log
  local sig
  sig=$(grep -m1 -oE "Child process terminated by signal [0-9]+" "$2" | grep -oE "[0-9]+$")
  if [ -n "$sig" ]; then echo "$sig"; elif [ "$1" -gt 128 ]; then echo $(($1 - 128)); fi
}

hostile_wait_socket() {   # up to 10 s, in 10 ms steps (the backend is restarted for every check)
  local i
  for ((i = 0; i < 1000; i++)); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$BACKEND_PID" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

hostile_run() {
  local label=$1 results=$2; shift 2
  local name log res line status reason reason2 notes brc exited event sig
  : > "$results"
  for name in $("$HOSTILE" --list); do
    rm -f "$SOCK"
    log=$HOSTILE_LOGS/$label.$name.log
    "$@" >"$log" 2>&1 &
    BACKEND_PID=$!
    if ! hostile_wait_socket; then
      kill -KILL "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; BACKEND_PID=
      printf '%s\tFAIL\tthe backend did not create its socket\t\n' "$name" >> "$results"
      continue
    fi
    res=$(timeout -k 5 120 "$HOSTILE" --socket="$SOCK" --share="$SHARE" --only="$name" --expect-exit \
          --peer="$label" 2>&1)
    local crc=$?
    exited=1
    wait_for 10 bash -c "! kill -0 $BACKEND_PID 2>/dev/null" || { exited=0; kill -KILL "$BACKEND_PID" 2>/dev/null; }
    wait "$BACKEND_PID"; brc=$?
    BACKEND_PID=
    line=$(grep -m1 -E "^(PASS|FAIL|SKIP) $name(:|$)" <<<"$res")
    status=${line%% *}
    reason=${line#"$status $name"}; reason=${reason#: }
    notes=$(grep "^NOTE $name: " <<<"$res" | sed "s/^NOTE $name: //" | grep -v '^backend exited with status' |
            paste -sd ';' - | sed 's/;/; /g')
    if [ -z "$line" ]; then
      status=FAIL
      if [ $crc -eq 124 ]; then reason="vufs-hostile timed out"; else reason="vufs-hostile gave no verdict (exit $crc)"; fi
    fi
    # What the backend did, seen from outside.
    event=$(hostile_log_event "$log")
    # (said once: vufs-hostile may have seen the same through the proc connector)
    if [ $exited -eq 0 ]; then
      status=FAIL
      [[ $reason == *"did not exit"* ]] || reason="the backend did not exit after the frontend disconnected${reason:+ -- $reason}"
    elif sig=$(hostile_death_signal "$brc" "$log") && [ -n "$sig" ]; then
      status=FAIL
      [[ $reason == *"died from"* ]] || reason="the backend died from signal $sig${reason:+ -- $reason}"
    fi
    if [ -n "$event" ]; then
      if [ "$status" != FAIL ]; then status=FAIL; reason="backend: $event"; else reason="$reason [backend: $event]"; fi
    fi
    local panic
    panic=$(grep -m1 -oE "fv_panic: libvhost-user: .*" "$log" | cut -c1-100)
    [ -n "$panic" ] && notes="${notes:+$notes; }$panic"
    if ! reason2=$(hostile_host_intact); then
      status=FAIL; reason="$reason2${reason:+ -- $reason}"
      head -c 4096 /dev/urandom > "$HOSTILE_CANARY"; HOSTILE_CANARY_SUM=$(sha256sum < "$HOSTILE_CANARY")
      chmod 0640 "$HOSTILE_CANARY"; find "$SCRATCH" /tmp -maxdepth 1 -name 'vufs-hostile-esc*' -exec rm -rf {} +
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$reason" "$notes" >> "$results"
    if [ "$status" = FAIL ]; then
      echo "FAIL $label $name: $reason"
      tail -n 5 "$log" | sed 's/^/    | /'
    fi
  done
  echo "== $label: $(grep -c $'\tPASS\t' "$results") passed, $(grep -c $'\tFAIL\t' "$results") failed," \
       "$(grep -c $'\tSKIP\t' "$results") skipped"
}

hostile_failed() {   # RESULTS: count of failed checks
  grep -c $'\tFAIL\t' "$1"
}

# A Markdown table of several result files: hostile_table "title1" file1 "title2" file2 ...
hostile_table() {
  local titles=() files=() i
  while [ $# -gt 0 ]; do titles+=("$1"); files+=("$2"); shift 2; done
  printf '| check |'; for i in "${titles[@]}"; do printf ' %s |' "$i"; done; printf '\n'
  printf '|---|'; for i in "${titles[@]}"; do printf -- '---|'; done; printf '\n'
  local name
  for name in $("$HOSTILE" --list); do
    printf '| `%s` |' "$name"
    for i in "${!files[@]}"; do
      local row st why what cell
      row=$(grep -m1 "^$name"$'\t' "${files[$i]}")
      st=$(cut -f2 <<<"$row"); why=$(cut -f3 <<<"$row"); what=$(cut -f4 <<<"$row")
      case $st in
        PASS) cell="PASS${what:+ ($(cut -c1-90 <<<"$what"))}" ;;
        FAIL) cell="**FAIL**: $(cut -c1-160 <<<"$why")" ;;
        SKIP) cell="skip: $why" ;;
        *) cell="-" ;;
      esac
      printf ' %s |' "$(sed 's/|/\\|/g' <<<"$cell")"
    done
    printf '\n'
  done
}

# ---- the report: each backend's results are kept, and build/hostile-report.md is made of all that are current ----
# A test runs one or more backends and keeps their results; any test then writes the report with every backend whose
# kept results came from this very build/vufs-hostile (results of another build, with other checks, are left out).
HOSTILE_KEPT=${VUFS_ROOT:-$PWD}/build/hostile-results
HOSTILE_REPORT=${VUFS_ROOT:-$PWD}/build/hostile-report.md
HOSTILE_ORDER="vufsd qemu rust"   # the report's columns, left to right; vufsd first, the one the others are held to

# hostile_save LABEL RESULTS TITLE NAME SETUP: TITLE heads the table's column, NAME is the backend in prose, SETUP
# says which build and options ran (one line).
hostile_save() {
  mkdir -p "$HOSTILE_KEPT"
  cp "$2" "$HOSTILE_KEPT/$1.tsv"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$3" "$4" "$5" "$(date -u +%Y-%m-%d)" "$(sha256sum < "$HOSTILE" | cut -c1-16)" \
    "$(basename "$0")" > "$HOSTILE_KEPT/$1.meta"
}

hostile_current() {   # LABEL: kept results from this vufs-hostile
  [ -s "$HOSTILE_KEPT/$1.tsv" ] && [ -s "$HOSTILE_KEPT/$1.meta" ] &&
    [ "$(cut -f5 "$HOSTILE_KEPT/$1.meta")" = "$(sha256sum < "$HOSTILE" | cut -c1-16)" ]
}

hostile_and() { paste -sd '\t' - | sed 's/\t/, /g; s/\(.*\), /\1 and /'; }   # lines -> "a, b and c"

# Prints which backends are in the report.
hostile_report() {
  local labels=() l n name st why f tests
  for l in $HOSTILE_ORDER; do
    if hostile_current "$l"; then labels+=("$l")
    elif [ -e "$HOSTILE_KEPT/$l.tsv" ]; then echo "report: $l left out: its results are from another build of vufs-hostile"
    fi
  done
  [ ${#labels[@]} -gt 0 ] || return 1
  n=$("$HOSTILE" --list | wc -l)
  hostile_meta() { cut -f"$2" "$HOSTILE_KEPT/$1.meta"; }
  hostile_count() { grep -c $'\t'"$2"$'\t' "$HOSTILE_KEPT/$1.tsv"; }
  tests=$(for l in "${labels[@]}"; do hostile_meta "$l" 6; done | awk '!seen[$0]++' | sed 's|.*|`tests/integration/&`|' |
          hostile_and)
  mkdir -p "$(dirname "$HOSTILE_REPORT")"
  {
    echo "# Hostile VMM + guest: $(for l in "${labels[@]}"; do hostile_meta "$l" 2; done | hostile_and)"
    echo
    echo "Generated by $tests with \`build/vufs-hostile\` ($n checks, one backend instance per check)."
    echo
    for l in "${labels[@]}"; do
      echo "- $(hostile_meta "$l" 2): $(hostile_meta "$l" 3):" \
           "**$(hostile_count "$l" PASS) passed, $(hostile_count "$l" FAIL) failed** ($(hostile_meta "$l" 4))"
    done
    echo
    echo "A check passes when the backend refuses what it must refuse, never reaches outside the share (canaries"
    echo "outside it are compared before and after), never writes outside the buffers it was given, does not die"
    echo "from a signal, assertion or panic, and exits once the frontend goes away. A clean disconnect is fine after a"
    echo "vhost-user protocol violation or a broken descriptor chain; a malformed FUSE request, or a chain with no room"
    echo "for its reply, must get an error and leave the session serving. In parentheses: what the backend did."
    echo "Both virtiofsd serve from a child running as PID 1 of its own PID namespace, where a failed assertion's"
    echo "abort() in QEMU's virtiofsd ends as SIGSEGV; the Rust virtiofsd's parent logs its child's death by a signal."
    for l in "${labels[@]}"; do
      [ "$l" = vufsd ] && continue
      echo
      if [ "${labels[0]}" = vufsd ]; then echo "Where $(hostile_meta "$l" 2) fails and vufsd passes:"
      else echo "Where $(hostile_meta "$l" 2) fails:"; fi
      echo
      f=0
      while IFS=$'\t' read -r name st why _; do
        [ "$st" = FAIL ] || continue
        [ "${labels[0]}" = vufsd ] && [ "$(grep -m1 "^$name"$'\t' "$HOSTILE_KEPT/vufsd.tsv" | cut -f2)" != PASS ] &&
          continue
        echo "- \`$name\`: $(cut -c1-200 <<<"$why")"; f=1
      done < "$HOSTILE_KEPT/$l.tsv"
      [ $f = 1 ] || echo "- none"
    done
    if [ "${labels[0]}" = vufsd ]; then
      echo
      echo "Where vufsd fails:"
      echo
      grep -q $'\tFAIL\t' "$HOSTILE_KEPT/vufsd.tsv" || echo "- none"
      while IFS=$'\t' read -r name st why _; do
        [ "$st" = FAIL ] && echo "- \`$name\`: $(cut -c1-200 <<<"$why")"
      done < "$HOSTILE_KEPT/vufsd.tsv"
    fi
    echo
    local args=()
    for l in "${labels[@]}"; do args+=("$(hostile_meta "$l" 1)" "$HOSTILE_KEPT/$l.tsv"); done
    hostile_table "${args[@]}"
  } > "$HOSTILE_REPORT"
  echo "report: ${labels[*]} written to $HOSTILE_REPORT"
}
