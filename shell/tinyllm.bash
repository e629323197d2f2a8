# tinyllm key binding for bash (4 or newer). In ~/.bashrc:   eval "$(tinyllm shell-init bash)"
#
# Type what you want in plain English and press Ctrl-G: the line becomes a command, cursor at the end.
# Nothing runs until you press Enter. Press the key again at once for the next candidate.
# A command with {{placeholders}}: readline cannot select text, so the first placeholder is taken out
# of the line (named above the prompt) with the cursor in its place: type its value. Shift-Tab does
# the same with the next one. Keys are bound in the emacs and vi-insert keymaps.
# Settings, read when this is evaluated:
#   TINYLLM_KEY=KEYS       the key, caret or readline notation: '^G' (default), '^X^T', '\eg'
#   TINYLLM_NEXT_KEY=KEYS  the next-placeholder key: '\e[Z' (Shift-Tab, default)
#   TINYLLM_NOBIND=1       define everything but bind no key
# A key already bound to a shell command or macro (navi's Ctrl-G, ...) is taken over, and init says so.
# and at each keypress:
#   TINYLLM_TIMEOUT=SECS  how long to wait for an answer (default 15)
#   TINYLLM_REVIEW=1      rank candidates with the model's reviewer, as `tinyllm suggest` does (~3x slower)
#   TINYLLM_NOFEEDBACK=1  never report what you ran
# After a suggestion, the one command you run next goes to the local daemon only (the feedback queue,
# reviewed with `tinyllm feedback`): unchanged or with only its placeholders filled in, as an
# acceptance; otherwise as a correction. Nothing else from your history is read or sent.
# Loading this twice does no harm.

_tinyllm_cli() { __TINYLLM_COMMAND__ "$@"; }
_tinyllm_socket=__TINYLLM_SOCKET__
_tinyllm_request=
_tinyllm_suggested=
_tinyllm_inserted=
_tinyllm_index=0
_tinyllm_histcmd=0
_tinyllm_candidates=()
_tinyllm_reply=()

# Candidates for the request $1 into _tinyllm_reply; on failure a one-line message in REPLY.
# A missing daemon is started once (it returns when the model is loaded; two shells get one daemon).
_tinyllm_fetch() {
  local out rc attempt err code line timeout=${TINYLLM_TIMEOUT:-15}
  _tinyllm_reply=()
  REPLY=
  if ! command -v curl >/dev/null 2>&1; then
    REPLY="tinyllm: the key binding needs curl"
    return 1
  fi
  for attempt in 1 2; do
    out=$(command curl -s --max-time "$timeout" --unix-socket "$_tinyllm_socket" -w '\n%{http_code}' \
      --data-urlencode "prompt=$1" --data n=3 --data-urlencode "review=${TINYLLM_REVIEW:-0}" 'http://localhost/v1/suggest?format=lines' 2>/dev/null)
    rc=$?
    [[ $rc == 7 && $attempt == 1 ]] || break
    printf '\r\033[Ktinyllm: starting the daemon...' >&2
    if ! err=$(_tinyllm_cli serve --detach --socket "$_tinyllm_socket" 2>&1 >/dev/null); then
      REPLY=${err##*$'\n'}
      REPLY=${REPLY:-tinyllm: the daemon did not start}
      return 1
    fi
  done
  case $rc in
    0) ;;
    28) REPLY="tinyllm: no answer within ${timeout}s"; return 1 ;;
    7) REPLY="tinyllm: no daemon answers at $_tinyllm_socket"; return 1 ;;
    *) REPLY="tinyllm: the request failed (curl exit $rc)"; return 1 ;;
  esac
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if [[ $code != 200 ]]; then
    REPLY=${out%%$'\n'*}
    REPLY=${REPLY:-tinyllm: the daemon answered HTTP $code}
    return 1
  fi
  while IFS= read -r line; do
    [[ -n $line ]] && _tinyllm_reply+=("$line")
  done <<< "$out"
  if (( ${#_tinyllm_reply[@]} == 0 )); then
    REPLY="tinyllm: no suggestion for that"
    return 1
  fi
}

# The candidate goes on the line; _tinyllm_inserted is the line as shown (the key cycles from it).
_tinyllm_insert() {
  _tinyllm_suggested=${_tinyllm_candidates[_tinyllm_index]}
  READLINE_LINE=$_tinyllm_suggested
  READLINE_POINT=${#READLINE_LINE}
  _tinyllm_take_placeholder 0
  _tinyllm_inserted=$READLINE_LINE
}

# Take the first {{placeholder}} at or after offset $1 (else the first of the line) out of the line,
# leave the cursor in its place and name it above the prompt; 1 when there is none.
_tinyllm_take_placeholder() {
  local re='[{][{][^}]*[}][}]' line=$READLINE_LINE from=$1 head
  if [[ ${line:from} =~ $re ]]; then
    head=${line:from}
  elif [[ $line =~ $re ]]; then
    from=0
    head=$line
  else
    return 1
  fi
  head=${head%%"${BASH_REMATCH[0]}"*}
  (( from += ${#head} ))
  READLINE_LINE=${line:0:from}${line:from+${#BASH_REMATCH[0]}}
  READLINE_POINT=$from
  printf '\r\033[K%s\n' "tinyllm: type ${BASH_REMATCH[0]}" >&2
}

_tinyllm_next_placeholder() {
  _tinyllm_take_placeholder "$READLINE_POINT" || printf '%s\n' "tinyllm: no placeholder on the line" >&2
}

# Is $2 the command $1 with nothing changed but its {{placeholders}} filled in?
_tinyllm_fills() {
  local rest=$1 pattern= part
  while [[ $rest == *'{{'*'}}'* ]]; do
    part=${rest%%'{{'*}
    rest=${rest#*'}}'}
    _tinyllm_literal "$part"
    pattern+=$REPLY'?*'
  done
  _tinyllm_literal "$rest"
  [[ $2 == $pattern$REPLY ]]
}

# REPLY: $1 as a glob pattern that matches only itself (extglob's +( @( !( too).
_tinyllm_literal() {
  REPLY=${1//\\/\\\\}
  REPLY=${REPLY//\*/\\*}
  REPLY=${REPLY//\?/\\?}
  REPLY=${REPLY//\[/\\[}
  REPLY=${REPLY//\(/\\(}
}

# bind -x runs this on a cleared line; readline redraws the prompt and buffer afterwards, so the
# indicator is erased with \r and a message ends with a newline to stay above the prompt.
_tinyllm_widget() {
  if [[ -n $_tinyllm_inserted && $READLINE_LINE == "$_tinyllm_inserted" ]]; then
    if (( ${#_tinyllm_candidates[@]} > 1 )); then
      _tinyllm_index=$(( (_tinyllm_index + 1) % ${#_tinyllm_candidates[@]} ))
      _tinyllm_insert
    else
      printf '%s\n' "tinyllm: no other suggestion" >&2
    fi
    return 0
  fi
  if [[ -z ${READLINE_LINE//[[:space:]]/} ]]; then
    printf '%s\n' "tinyllm: type what you want to do, then press the key" >&2
    return 0
  fi
  local request=$READLINE_LINE
  printf 'tinyllm: thinking...' >&2
  if ! _tinyllm_fetch "$request"; then
    printf '\r\033[K%s\n' "$REPLY" >&2
    return 0
  fi
  printf '\r\033[K' >&2
  _tinyllm_request=$request
  _tinyllm_candidates=("${_tinyllm_reply[@]}")
  _tinyllm_index=0
  _tinyllm_histcmd=$HISTCMD  # the number the line being edited will get in the history
  _tinyllm_insert
}

# Post what was run after a suggestion, in the background: request $1, suggested $2, ran $3.
_tinyllm_report() {
  local ran=$3
  ran=${ran#"${ran%%[![:space:]]*}"}
  ran=${ran%"${ran##*[![:space:]]}"}
  [[ -n $ran && -z $TINYLLM_NOFEEDBACK ]] || return 0
  local fields
  if _tinyllm_fills "$2" "$ran"; then
    fields=(--data-urlencode "command=$ran")
  else
    fields=(--data-urlencode "suggested=$2" --data-urlencode "corrected=$ran")
  fi
  (command curl -s --max-time 5 --unix-socket "$_tinyllm_socket" --data-urlencode "request=$1" \
    "${fields[@]}" --data source=shell http://localhost/v1/feedback >/dev/null 2>&1 &)
}

# Runs before each prompt. Only the history entry numbered as the edited line was is the command run
# from it: an older one means the line was abandoned (Ctrl-C) or not recorded (ignorespace, ...).
_tinyllm_precmd() {
  local status=$?
  if [[ -n $_tinyllm_inserted ]]; then
    local request=$_tinyllm_request suggested=$_tinyllm_suggested since=$_tinyllm_histcmd entry
    _tinyllm_inserted=
    _tinyllm_candidates=()
    entry=$(HISTTIMEFORMAT= builtin history 1)
    if [[ $entry =~ ^[[:space:]]*([0-9]+)[*]?[[:space:]]+(.*)$ ]] && (( BASH_REMATCH[1] >= since )); then
      _tinyllm_report "$request" "$suggested" "${BASH_REMATCH[2]}"
    fi
  fi
  return $status
}

# Bind the shell function $3 to the key $1 (or $2 when unset, caret or readline notation) in emacs
# and vi-insert; say once when that takes the key from another shell command or macro.
_tinyllm_bind() {
  local key=${1:-$2} seq= char map line taken=
  while [[ -n $key ]]; do  # caret notation to readline's: ^G -> \C-g, ^[ -> \e
    if [[ $key == '^['* ]]; then
      seq+='\e'
      key=${key:2}
    elif [[ $key == '^'?* ]]; then
      char=${key:1:1}
      seq+="\\C-${char,,}"
      key=${key:2}
    else
      seq+=${key:0:1}
      key=${key:1}
    fi
  done
  for map in emacs vi-insert; do
    while IFS= read -r line; do
      [[ $line == "\"$seq\": "* && $line != *_tinyllm_* ]] && taken=${line#*: }
    done < <(bind -m "$map" -X; bind -m "$map" -s)
    bind -m "$map" -x "\"$seq\": $3"
  done
  [[ -z $taken ]] || printf '%s\n' "tinyllm: ${1:-$2} was bound to $taken; it now runs $3 (set $4 to use another key)" >&2
}

_tinyllm_setup() {
  [[ $- == *i* ]] || return 0
  if [[ $PROMPT_COMMAND != *_tinyllm_precmd* ]]; then
    PROMPT_COMMAND="_tinyllm_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"
  fi
  [[ -z $TINYLLM_NOBIND ]] || return 0
  if (( BASH_VERSINFO[0] < 4 )); then
    printf '%s\n' "tinyllm: the key binding needs bash 4 or newer (this is $BASH_VERSION); use 'tinyllm ask'" >&2
    return 0
  fi
  _tinyllm_bind "$TINYLLM_KEY" '^G' _tinyllm_widget TINYLLM_KEY
  _tinyllm_bind "$TINYLLM_NEXT_KEY" '\e[Z' _tinyllm_next_placeholder TINYLLM_NEXT_KEY
}
_tinyllm_setup
unset -f _tinyllm_setup _tinyllm_bind
