# tinyllm key binding for zsh. In ~/.zshrc:   eval "$(tinyllm shell-init zsh)"
#
# Type what you want in plain English and press Ctrl-G: the line becomes a command, cursor at the end.
# Nothing runs until you press Enter. Press the key again at once for the next candidate.
# A command with {{placeholders}} arrives with the first one selected: type (or paste) to replace it,
# Shift-Tab selects the next one. Keys are bound in the emacs, viins and vicmd keymaps.
# Settings, read when this is evaluated:
#   TINYLLM_KEY=KEYS       the key in bindkey notation: '^G' (default), '^X^T', '\eg'
#   TINYLLM_NEXT_KEY=KEYS  the next-placeholder key: '^[[Z' (Shift-Tab, default)
#   TINYLLM_NOBIND=1       define everything but bind no key
# A key already bound to another plugin's widget (navi's Ctrl-G, ...) is taken over, and init says so.
# and at each keypress:
#   TINYLLM_TIMEOUT=SECS  how long to wait for an answer (default 15)
#   TINYLLM_REVIEW=1      rank candidates with the model's reviewer, as `tinyllm suggest` does (~3x slower)
#   TINYLLM_NOFEEDBACK=1  never report what you ran
# After a suggestion, the one command you run next goes to the local daemon only (the feedback queue,
# reviewed with `tinyllm feedback`): unchanged or with only its placeholders filled in, as an
# acceptance; otherwise as a correction. Nothing else from your history is read or sent.
# Loading this twice does no harm.

_tinyllm_cli() { __TINYLLM_COMMAND__ "$@" }
typeset -g _tinyllm_socket=__TINYLLM_SOCKET__
typeset -g _tinyllm_request= _tinyllm_inserted= _tinyllm_placeholder=
typeset -gi _tinyllm_index=0 _tinyllm_mark=0
typeset -ga _tinyllm_candidates _tinyllm_reply

# Candidates for the request $1 into _tinyllm_reply; on failure a one-line message in REPLY.
# A missing daemon is started once (it returns when the model is loaded; two shells get one daemon).
_tinyllm_fetch() {
  emulate -L zsh
  local out err code timeout=${TINYLLM_TIMEOUT:-15}
  local -i rc attempt
  local -a lines
  _tinyllm_reply=()
  REPLY=
  if (( ! $+commands[curl] )); then
    REPLY="tinyllm: the key binding needs curl"
    return 1
  fi
  for attempt in 1 2; do
    out=$(command curl -s --max-time $timeout --unix-socket $_tinyllm_socket -w '\n%{http_code}' \
      --data-urlencode "prompt=$1" --data n=3 --data-urlencode "review=${TINYLLM_REVIEW:-0}" 'http://localhost/v1/suggest?format=lines' 2>/dev/null)
    rc=$?
    (( rc == 7 && attempt == 1 )) || break
    zle -R "tinyllm: starting the daemon..."
    if ! err=$(_tinyllm_cli serve --detach --socket $_tinyllm_socket 2>&1 >/dev/null); then
      lines=(${(f)err})  # (a one-element split is a scalar, so index an array, not the expansion)
      REPLY=$lines[-1]
      : ${REPLY:=tinyllm: the daemon did not start}
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
    lines=(${(f)out})
    REPLY=$lines[1]
    : ${REPLY:=tinyllm: the daemon answered HTTP $code}
    return 1
  fi
  _tinyllm_reply=(${(f)out})  # unquoted: empty lines dropped
  if (( $#_tinyllm_reply == 0 )); then
    REPLY="tinyllm: no suggestion for that"
    return 1
  fi
}

_tinyllm_insert() {
  _tinyllm_inserted=$_tinyllm_candidates[_tinyllm_index]
  BUFFER=$_tinyllm_inserted
  CURSOR=$#BUFFER
  REGION_ACTIVE=0
  _tinyllm_select_placeholder 0
}

# Select the first {{placeholder}} at or after offset $1, else the first of the line; 1 when none.
_tinyllm_select_placeholder() {
  local re='[{][{][^}]*[}][}]'
  local -i from=$1
  if [[ ${BUFFER:$from} =~ $re ]]; then
    MARK=$(( from + MBEGIN - 1 ))
    CURSOR=$(( from + MEND ))
  elif [[ $BUFFER =~ $re ]]; then
    MARK=$(( MBEGIN - 1 ))
    CURSOR=$MEND
  else
    return 1
  fi
  REGION_ACTIVE=1
  _tinyllm_placeholder=$MATCH
  _tinyllm_mark=$MARK
}

_tinyllm_next_placeholder() {
  emulate -L zsh
  _tinyllm_select_placeholder $CURSOR || zle -M "tinyllm: no placeholder on the line"
}

# Typing or pasting over a selected placeholder replaces it (zle itself would insert beside it).
_tinyllm_take_placeholder() {
  if (( REGION_ACTIVE )) && [[ -n $_tinyllm_placeholder && $MARK == $_tinyllm_mark &&
        ${BUFFER[MARK+1,CURSOR]} == "$_tinyllm_placeholder" ]]; then
    BUFFER=${BUFFER[1,MARK]}${BUFFER[CURSOR+1,-1]}
    CURSOR=$MARK
    REGION_ACTIVE=0
  fi
  _tinyllm_placeholder=
}
_tinyllm_self_insert() { _tinyllm_take_placeholder; zle _tinyllm_orig_self-insert -- "$@" }
_tinyllm_bracketed_paste() { _tinyllm_take_placeholder; zle _tinyllm_orig_bracketed-paste -- "$@" }

_tinyllm_widget() {
  emulate -L zsh
  if [[ -n $_tinyllm_inserted && $BUFFER == "$_tinyllm_inserted" ]]; then
    if (( $#_tinyllm_candidates > 1 )); then
      (( _tinyllm_index = _tinyllm_index % $#_tinyllm_candidates + 1 ))
      _tinyllm_insert
    else
      zle -M "tinyllm: no other suggestion"
    fi
    return 0
  fi
  if [[ -z ${BUFFER//[[:space:]]/} ]]; then
    zle -M "tinyllm: type what you want to do, then press the key"
    return 0
  fi
  local request=$BUFFER
  zle -R "tinyllm: thinking..."
  if ! _tinyllm_fetch $request; then
    zle -M $REPLY
    return 0
  fi
  _tinyllm_request=$request
  _tinyllm_candidates=("${_tinyllm_reply[@]}")
  _tinyllm_index=1
  _tinyllm_insert
}

_tinyllm_forget() {
  _tinyllm_request=
  _tinyllm_inserted=
  _tinyllm_placeholder=
  _tinyllm_candidates=()
}

# Is $2 the command $1 with nothing changed but its {{placeholders}} filled in?
_tinyllm_fills() {
  emulate -L zsh
  local rest=$1 pattern=
  while [[ $rest == *'{{'*'}}'* ]]; do
    pattern+=${(b)rest%%'{{'*}'?*'
    rest=${rest#*'}}'}
  done
  pattern+=${(b)rest}
  [[ $2 == ${~pattern} ]]
}

# Post what was run after a suggestion, in the background: request $1, suggested $2, ran $3.
_tinyllm_report() {
  emulate -L zsh
  setopt extended_glob
  local ran=${${3##[[:space:]]#}%%[[:space:]]#}
  [[ -n $ran && -z $TINYLLM_NOFEEDBACK ]] || return 0
  local -a fields
  if _tinyllm_fills $2 $ran; then
    fields=(--data-urlencode "command=$ran")
  else
    fields=(--data-urlencode "suggested=$2" --data-urlencode "corrected=$ran")
  fi
  (command curl -s --max-time 5 --unix-socket $_tinyllm_socket --data-urlencode "request=$1" \
    $fields --data source=shell http://localhost/v1/feedback >/dev/null 2>&1 &)
}

# The line run after a suggestion ($1: as typed, $3: in full).
_tinyllm_preexec() {
  emulate -L zsh
  [[ -n $_tinyllm_inserted ]] || return 0
  local request=$_tinyllm_request suggested=$_tinyllm_inserted
  _tinyllm_forget
  _tinyllm_report $request $suggested "${1:-$3}"
  return 0
}

# Each new line starts clean: a suggestion on a line abandoned with Ctrl-C must not claim the next command.
_tinyllm_line_init() { _tinyllm_forget }

# Bind $3 to the key $1 (or $2 when unset) in every keymap; say once when that takes the key from
# another plugin's widget (a builtin widget, like Ctrl-G's send-break, is taken silently).
_tinyllm_bind() {
  local key=${1:-$2} map widget
  local -a taken words
  for map in emacs viins vicmd; do
    words=(${(z)"$(bindkey -M $map $key)"})
    widget=${words[2]:-}
    [[ $widgets[$widget] == user:* && $widget != _tinyllm_* ]] && taken+=($widget)
    bindkey -M $map $key $3
  done
  (( $#taken )) && print -ru2 -- "tinyllm: $key was bound to ${(j:, :)${(u)taken}}; it now runs $3 (set ${4} to use another key)"
  return 0
}

_tinyllm_setup() {
  emulate -L zsh
  [[ -o interactive ]] || return 0
  zmodload -i zsh/zleparameter
  autoload -Uz add-zsh-hook is-at-least
  add-zsh-hook preexec _tinyllm_preexec
  zle -N _tinyllm_widget
  zle -N _tinyllm_next_placeholder
  local widget
  for widget in self-insert bracketed-paste; do
    (( $+widgets[.$widget] )) || continue  # no bracketed-paste before zsh 5.1
    [[ $widgets[$widget] == user:_tinyllm_* ]] && continue  # loaded twice: wrap once
    if [[ $widgets[$widget] == user:* ]]; then  # another plugin's wrapper: keep calling it
      zle -A $widget _tinyllm_orig_$widget
    else
      zle -A .$widget _tinyllm_orig_$widget
    fi
    zle -N $widget _tinyllm_${widget//-/_}
  done
  if is-at-least 5.3; then
    autoload -Uz add-zle-hook-widget
    zle -N _tinyllm_line_init
    add-zle-hook-widget line-init _tinyllm_line_init
  fi
  [[ -z $TINYLLM_NOBIND ]] || return 0
  _tinyllm_bind "$TINYLLM_KEY" '^G' _tinyllm_widget TINYLLM_KEY
  _tinyllm_bind "$TINYLLM_NEXT_KEY" '^[[Z' _tinyllm_next_placeholder TINYLLM_NEXT_KEY
}
_tinyllm_setup
unfunction _tinyllm_setup _tinyllm_bind
