# Shared by hostile_vufsd.sh and hostile_qemu_virtiofsd.sh (sourced after lib.sh; not a test itself).
# Runs build/vufs-hostile against a backend, one check per backend instance (vufsd and QEMU's virtiofsd serve one
# connection each), and judges each check from both sides: the client's verdict, plus what the backend process did
# (exit status, signal, sanitizer report, assertion, or not exiting after the frontend went away).
#
#   hostile_run LABEL RESULTS backend-command...   the command must listen on $SOCK and share $SHARE
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
hostile_log_event() {
  grep -m1 -E "ERROR: (Address|Leak|Thread|UndefinedBehavior)Sanitizer|runtime error:|Assertion .* failed" "$1" |
    sed -E 's/^.*(ERROR: |runtime error: )/\1/; s/^.*(Assertion)/\1/' | cut -c1-160
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
  local name log res line status reason reason2 notes brc exited event
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
    if [ $exited -eq 0 ]; then
      status=FAIL; reason="the backend did not exit after the frontend disconnected${reason:+ -- $reason}"
    elif [ $brc -gt 128 ]; then
      status=FAIL; reason="the backend died from signal $((brc - 128))${reason:+ -- $reason}"
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
