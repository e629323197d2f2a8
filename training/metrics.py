"""Scores for predicted commands: exact match (whitespace collapsed) and the NLC2CMD utility/flag score.

NLC2CMD (NeurIPS 2020 competition; Agarwal et al. 2021, arXiv:2103.02523) compares a prediction with the
reference utility by utility, in order. With T = the larger number of utilities of the two commands:

    S(p) = (1/T) * sum_i [ u_i * (1 + f_i) / 2  -  (1 - u_i) ]

u_i is 1 when the i-th utilities have the same name (a missing one never matches) and f_i is the flag
score of that pair, (2*|F & F'| - |F | F'|) / max(1, |F|, |F'|), 1 when neither has flags. The divisor
is the competition's reference code (metric_utils.get_flag_score), so f_i lies in [-2, 1] and S in [-1, 1].

Two simplifications, both deliberate:
- The competition parsed with bashlint's per-utility grammar; here shlex splits the command on
  | ; && || & $( ) and backticks (and `find -exec`, `xargs`, `sudo`... start a new utility), the first
  word of each part is its utility and words starting with '-' are its flags. Combined short flags are
  split (`-la` = `-l -a`) except for utilities whose options are single-dash words (`find -name`).
- The competition scored the top-k list as max S(p) when some S(p) > 0, else the confidence-weighted mean;
  we take the max over the top-N predictions in every case (an empty list scores -1).
"""
import re
import shlex

_SPACE = re.compile(r"\s+")
# Tokens that end one simple command and start another.
_SEPARATORS = {"|", "||", "&&", ";", ";;", "&", "|&", "{", "}"}
_REDIRECTION = re.compile(r"^\d*[<>&]+\|?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Utilities that run the command named by their first operand; the options listed take a value.
_WRAPPERS = {
    "sudo": {"-u", "-g", "-h", "-p", "-C", "-U"}, "xargs": {"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a"},
    "nohup": set(), "time": set(), "exec": set(), "command": set(), "env": {"-u"}, "nice": {"-n"},
    "watch": {"-n", "-d"}, "timeout": {"-s", "-k"},
}
_FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}
# Utilities whose options are whole single-dash words, so `-name` is one flag, not four.
_SINGLE_DASH_WORDS = {"find", "java", "javac", "gcc", "g++", "cc", "clang", "ffmpeg", "ffprobe", "openssl",
                      "convert", "mogrify", "identify", "test", "[", "[[", "xmllint", "tcpdump", "iptables"}

Utility = tuple[str, frozenset[str]]


def collapse(command: str) -> str:
    return _SPACE.sub(" ", command).strip()


def exact_match(pred: str, ref: str) -> bool:
    return collapse(pred) == collapse(ref)


def top_n_exact_match(preds: list[str], ref: str) -> bool:
    return any(exact_match(p, ref) for p in preds)


def _tokens(command: str) -> list[str]:
    """Shell words and operators; unbalanced quotes fall back to splitting on whitespace and operators."""
    command = command.replace("`", " ; ")  # a backtick substitution is one more command
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return re.findall(r"\|\||&&|[|;&()<>]+|[^\s|;&()<>]+", command.replace('"', " ").replace("'", " "))


def _simple_commands(command: str) -> list[list[str]]:
    """The words of each simple command, in order, with redirections dropped. A `$( ... )` inside a
    command is its own simple command, listed after the outer one, which resumes after it."""
    tokens = _tokens(command)
    parts: list[list[str]] = []
    words: list[str] = []
    outer: list[list[str]] = []

    def close(part: list[str]) -> None:
        if not any(part is seen for seen in parts):  # an outer command is listed once
            parts.append(part)

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "$" and tokens[i + 1:i + 2] == ["("]:
            close(words)
            outer.append(words)
            words = []
            i += 1
        elif token == ")" and outer:
            close(words)
            words = outer.pop()
        elif token in ("(", ")", "!") and words[:1] == ["find"]:
            words.append(token)  # find's own grouping and negation
        elif token in _SEPARATORS or token in ("(", ")"):
            close(words)
            words = []
        elif _REDIRECTION.match(token):
            i += 1  # the file name after > or <
        else:
            words.append(token)
        i += 1
    close(words)
    return [p for p in parts if p]


def _flags(utility: str, word: str) -> list[str]:
    if word.startswith("--"):
        return [word.split("=", 1)[0]]
    if utility in _SINGLE_DASH_WORDS:
        return [word.split("=", 1)[0]]
    letters = re.match(r"-([A-Za-z]+)", word)
    if not letters:
        return [word]  # -9, -1: numeric options are one flag
    return [f"-{c}" for c in letters.group(1)]  # -la -> -l -a; -n20 -> -n


def _split_utilities(words: list[str]) -> list[Utility]:
    """One simple command's utilities: its own, plus any command it runs (xargs rm, find -exec rm)."""
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return []
    name = words[0].lower()
    flags: list[str] = []
    rest = words[1:]
    for i, word in enumerate(rest):
        if word == "--":
            break
        if name == "find" and word in _FIND_EXEC:
            return [(name, frozenset(flags + [word]))] + _split_utilities(rest[i + 1:])
        if word.startswith("-") and len(word) > 1:
            flags += _flags(name, word)
        elif name in _WRAPPERS and not (i and rest[i - 1] in _WRAPPERS[name]) and not _ASSIGNMENT.match(word):
            return [(name, frozenset(flags))] + _split_utilities(rest[i:])
    return [(name, frozenset(flags))]


def utilities(command: str) -> list[Utility]:
    """The (name, flags) of every utility in `command`, left to right."""
    return [u for words in _simple_commands(command) for u in _split_utilities(words)]


def flag_score(pred: frozenset[str], ref: frozenset[str]) -> float:
    if not pred and not ref:
        return 1.0
    return (2 * len(pred & ref) - len(pred | ref)) / max(1, len(pred), len(ref))


def nlc2cmd_pair(pred: str, ref: str) -> float:
    """S(p) for one prediction, in [-1, 1]."""
    pred_utils, ref_utils = utilities(pred), utilities(ref)
    total = max(len(pred_utils), len(ref_utils))
    if total == 0:
        return 0.0  # as the reference code: nothing to compare
    score = 0.0
    for i in range(total):
        p = pred_utils[i] if i < len(pred_utils) else None
        r = ref_utils[i] if i < len(ref_utils) else None
        if p is not None and r is not None and p[0] == r[0]:
            score += (1 + flag_score(p[1], r[1])) / 2
        else:
            score -= 1
    return score / total


def nlc2cmd_score(preds: list[str], ref: str) -> float:
    """The example's score: the best S(p) over the top-N predictions; -1 when there are none."""
    return max((nlc2cmd_pair(p, ref) for p in preds), default=-1.0)


def same_first_utility(preds: list[str], ref: str) -> bool:
    """Whether the first prediction's first utility is the reference's (the right tool, flags aside)."""
    if not preds:
        return False
    pred, want = utilities(preds[0]), utilities(ref)
    return bool(pred and want) and pred[0][0] == want[0][0]
