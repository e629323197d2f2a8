"""Checks on every candidate before a user sees it: is it a command line, and does it run real tools?

- What is not a command is cleaned (a markdown fence, a list number, a `$ ` or `# ` prompt, quotes
  around the whole line) or dropped when nothing is left.
- The line must parse: quotes, `$(...)`, backquotes, parentheses and `if/fi`, `do/done`, `{ }` balance,
  no operator lacks its command, no redirection lacks its target. A small scanner of our own: `bash -n`
  costs a process per candidate (milliseconds), a persistent bash would have to execute model output
  to parse it, and bashlex would be a new dependency for what ~150 lines do. Lines with `case` get
  only the quote check (their `pattern)` syntax would need a real grammar).
- Every simple command's program (through `sudo`, `env`, `xargs`, ... and assignments) must be a
  shell builtin or keyword, a path, an executable on PATH, or a utility known from training data or
  the example index. Unknown ones (invented by the model) are dropped; known but missing ones are kept
  and marked "not installed".
Duplicates (same words after whitespace is collapsed) merge; the rest are re-ranked: the user's own
answers first, then installed before not installed, then by model score (a stable sort).
"""
import os
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Container, Iterable

from .errors import EngineError

USER_SOURCE_PREFIX = "your "  # "your correction #N", "your acceptance #N": never dropped
NOT_INSTALLED = "not installed"
_UTILITIES_FILE = Path(__file__).parent / "bundled" / "utilities.txt"

BUILTINS = frozenset("""
. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo
enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf
pushd pwd read readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit
umask unalias unset wait autoload bindkey emulate float functions integer limit noglob print rehash sched setopt
unfunction unlimit unsetopt vared whence where which zle zmodload zstyle
""".split())
# Reserved words after which a command follows; the closers end a compound command.
_LEADERS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_OPENERS = {"if": "fi", "do": "done", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
# Reserved words whose segment holds no program to check (loop variables, word lists, tests).
_NO_PROGRAM = frozenset({"for", "select", "function", "[[", "in"})
# Programs that run another: wrapper -> (its options that take a value, operands before the program).
_WRAPPERS = {
    "sudo": ({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}, 0), "doas": ({"-u", "-C"}, 0),
    "env": ({"-u", "-C", "-S"}, 0), "nice": ({"-n"}, 0), "nohup": (set(), 0), "time": ({"-f", "-o"}, 0),
    "command": (set(), 0), "builtin": (set(), 0), "exec": ({"-a"}, 0), "stdbuf": ({"-i", "-o", "-e"}, 0),
    "xargs": ({"-I", "-n", "-P", "-d", "-E", "-L", "-s", "-a"}, 0), "watch": ({"-n", "-d"}, 0),
    "timeout": ({"-s", "-k"}, 1), "ionice": ({"-c", "-n", "-p"}, 0), "strace": ({"-e", "-o", "-p", "-s"}, 0),
    "taskset": (set(), 1), "flock": ({"-w", "-E"}, 1), "chrt": (set(), 1), "unbuffer": (set(), 0),
}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?\+?=")
_CASE = re.compile(r"(?:^|[\s;&|(])case\s")
_FENCE = re.compile(r"^```(?:bash|sh|shell|zsh|console|shell-session|text)?\s*|\s*```$")
_LIST_MARK = re.compile(r"^(?:\d+[.)]|[-*•])\s+")
_PROMPT = re.compile(r"^[$#]\s+")
_QUOTES = "\"'`"


class ParseError(EngineError):
    """Where bash would refuse the line, in a few words."""


# -- what is not a command -----------------------------------------------------------------------
def strip_non_command(text: str) -> tuple[str, list[str]]:
    """`text` without what models wrap commands in, and what was removed ("" when nothing is left)."""
    removed: list[str] = []
    while True:
        text = text.strip()
        before = text
        for label, pattern in (("markdown fence", _FENCE), ("list number", _LIST_MARK), ("prompt", _PROMPT)):
            cleaned = pattern.sub("", text)
            if cleaned != text:
                text = cleaned.strip()
                removed.append(label)
        if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES and text[0] not in text[1:-1]:
            text = text[1:-1]
            removed.append("quotes")
        if text == before:
            return text, list(dict.fromkeys(removed))


# -- parsing -------------------------------------------------------------------------------------
class _Scanner:
    """Splits a command line into simple commands (lists of words), recursing into `$(...)`,
    backquotes and process substitutions; raises ParseError on what bash would reject."""

    def __init__(self, text: str):
        self.text = text
        self.commands: list[list[str]] = []

    def scan(self, start: int = 0, closing: str = "") -> int:
        """Scan from `start` until `closing` (")" for a nested list) or the end; return the index after it."""
        text, i = self.text, start
        words: list[str] = []
        word, in_word = "", False
        expect_target = False  # a redirection wants its file next
        need_command = False  # after | && || a command must follow
        test = False  # inside [[ ... ]]: operators are words
        stack: list[str] = []

        def end_word():
            nonlocal word, in_word, expect_target, test
            if in_word:
                if expect_target:
                    expect_target = False
                else:
                    words.append(word)
                    if word == "[[":
                        test = True
                    elif word == "]]":
                        test = False
            word, in_word = "", False

        def end_command(operator: str):
            nonlocal words, need_command
            end_word()
            if expect_target:
                raise ParseError("a redirection has no target")
            if words:
                self._structure(words, stack)
                self.commands.append(words)
            elif operator != "\n" or need_command:
                raise ParseError(f"'{operator}' has no command before it" if operator != "\n"
                                 else "an operator has no command after it")
            words = []
            need_command = operator in ("|", "||", "&&", "|&")

        while i < len(text):
            c = text[i]
            if c == "\\":
                word, in_word, i = word + text[i + 1:i + 2], True, i + 2
            elif text.startswith("{{", i) and "}}" in text[i:]:  # a tldr placeholder: {{a|b}} is not a pipe
                end = text.index("}}", i) + 2
                word, in_word, i = word + text[i:end], True, end
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise ParseError("unclosed quote")
                word, in_word, i = word + text[i + 1:end], True, end + 1
            elif c == '"':
                end = self._double_quoted(i + 1)
                inner = text[i + 1:end - 1]
                expands = "$" in inner or "`" in inner  # "$" marks a word we cannot judge
                word, in_word, i = word + ("$" if expands else inner.replace("\\", "")), True, end
            elif c == "`":
                end = self._backquote_end(i + 1)
                self._nested(text[i + 1:end])
                word, in_word, i = word + "$", True, end + 1
            elif c == "$" and text.startswith("$((", i):
                i = self._balanced(i + 3, "(", ")", 2)
                word, in_word = word + "$", True
            elif c == "$" and text.startswith("$(", i):
                i = self.scan(i + 2, ")")
                word, in_word = word + "$", True
            elif c == "$" and text.startswith("${", i):
                i = self._balanced(i + 2, "{", "}", 1)
                word, in_word = word + "$", True
            elif c == "$" and text.startswith("$'", i):
                i = self._ansi_c_end(i + 2)
                word, in_word = word + "$", True
            elif c in "<>" and text.startswith("(", i + 1):
                i = self.scan(i + 2, ")")
                word, in_word = word + "$", True
            elif test and c in "<>&|()":
                word, in_word, i = word + c, True, i + 1
            elif c in "<>" or (c == "&" and text.startswith(">", i + 1)):
                if not (in_word and word.isdigit()):
                    end_word()
                word, in_word = "", False
                if expect_target:
                    raise ParseError("a redirection has no target")
                i += 1
                while i < len(text) and (text[i] in "<>&" or text[i] == "|" and text[i - 1] == ">"):
                    i += 1
                expect_target = True
            elif c in "|&;":
                op = text[i:i + 2] if text[i:i + 2] in ("||", "&&", "|&", ";;") else c
                if op == ";;":
                    raise ParseError("';;' outside case")
                end_command(op)
                i += len(op)
            elif c == "\n":
                end_command("\n")
                i += 1
            elif c == "(" and not in_word and _leaders_only(words) and text.startswith("((", i):
                i = self._balanced(i + 2, "(", ")", 2)
                words = words + ["(("]  # arithmetic: no program in it
            elif c == "(":
                end_word()
                if _leaders_only(words) and not expect_target:
                    i = self.scan(i + 1, ")")
                    words = words + ["("]  # a subshell: its commands were recorded; it stands as one word here
                elif len(words) == 1 and text[i + 1:].lstrip().startswith(")"):
                    i = text.index(")", i) + 1  # name() { ...; }: a function definition
                    words = ["function"]
                    self._structure(words, stack)
                    self.commands.append(words)
                    words = []
                else:
                    raise ParseError("unexpected '('")
            elif c == ")":
                if closing != ")":
                    raise ParseError("unbalanced ')'")
                end_command("\n")
                if stack:
                    raise ParseError(f"'{stack[-1]}' is missing")
                return i + 1
            elif c in " \t":
                end_word()
                i += 1
            elif c == "#" and not in_word:
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
            else:
                word, in_word, i = word + c, True, i + 1
        if closing:
            raise ParseError(f"unclosed '{closing}'")
        end_command("\n")
        if stack:
            raise ParseError(f"'{stack[-1]}' is missing")
        return i

    def _nested(self, text: str) -> None:
        inner = _Scanner(text)
        inner.scan()
        self.commands += inner.commands

    @staticmethod
    def _structure(words: list[str], stack: list[str]) -> None:
        """Track if/fi, do/done and { } across the simple commands of one list."""
        for word in _reserved_prefix(words):
            if word in _OPENERS:
                stack.append(_OPENERS[word])
            elif word in _CLOSERS:
                if not stack or stack.pop() != word:
                    raise ParseError(f"unexpected '{word}'")

    def _double_quoted(self, i: int) -> int:
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
            elif c == '"':
                return i + 1
            elif text.startswith("$((", i):
                i = self._balanced(i + 3, "(", ")", 2)
            elif text.startswith("$(", i):
                i = self.scan(i + 2, ")")
            elif text.startswith("${", i):
                i = self._balanced(i + 2, "{", "}", 1)
            elif c == "`":
                end = self._backquote_end(i + 1)
                self._nested(text[i + 1:end])
                i = end + 1
            else:
                i += 1
        raise ParseError("unclosed quote")

    def _backquote_end(self, i: int) -> int:
        while i < len(self.text):
            if self.text[i] == "\\":
                i += 2
            elif self.text[i] == "`":
                return i
            else:
                i += 1
        raise ParseError("unclosed '`'")

    def _ansi_c_end(self, i: int) -> int:
        while i < len(self.text):
            if self.text[i] == "\\":
                i += 2
            elif self.text[i] == "'":
                return i + 1
            else:
                i += 1
        raise ParseError("unclosed quote")

    def _balanced(self, i: int, open_: str, close: str, depth: int) -> int:
        """The index after the `depth` closers that balance what was opened (quotes respected)."""
        text, level = self.text, depth
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c in "'\"":
                end = text.find(c, i + 1)
                if end < 0:
                    raise ParseError("unclosed quote")
                i = end + 1
                continue
            if c == open_:
                level += 1
            elif c == close:
                level -= 1
                if level == 0:
                    return i + 1
            i += 1
        raise ParseError(f"unclosed '{open_}'")


def _leaders_only(words: list[str]) -> bool:
    """Nothing but reserved words so far (`if`, `!`, ...): a command may start here."""
    return all(word in _LEADERS for word in words)


def _reserved_prefix(words: list[str]) -> list[str]:
    """The reserved words a simple command starts with (`if ! {` ...), or its closer (`done`, `fi`)."""
    out = []
    for word in words:
        if word in _LEADERS or word in _CLOSERS:
            out.append(word)
            if word in _CLOSERS:
                break
        else:
            break
    return out


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a command line (nested ones included), each a list of its words;
    raises ParseError where bash would refuse the line."""
    if _CASE.search(line):
        _Scanner(line.replace("(", " ").replace(")", " ").replace(";;", ";")).scan()  # quotes only
        return []
    scanner = _Scanner(line)
    scanner.scan()
    return scanner.commands


def programs_of(words: list[str]) -> list[str]:
    """Every program a simple command names: `sudo -u bob nice -n 5 tar ...` -> sudo, nice, tar."""
    i, out = 0, []
    while i < len(words) and (words[i] in _LEADERS or words[i] in _CLOSERS):
        i += 1
    if i < len(words) and words[i] in _NO_PROGRAM:
        return out
    while i < len(words):
        word = words[i]
        if _ASSIGNMENT.match(word) and not out:
            i += 1
            continue
        if word in ("(", "((") or word.startswith("(("):
            return out
        out.append(word)
        if word not in _WRAPPERS:
            return out
        takes_value, operands = _WRAPPERS[word]
        i += 1
        while i < len(words) and (words[i].startswith("-") or (word == "env" and _ASSIGNMENT.match(words[i]))):
            i += 2 if words[i] in takes_value else 1
        i += operands
    return out


# -- programs --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def bundled_utilities() -> frozenset[str]:
    """The utilities of the bundled training data (one name per line), read once."""
    try:
        lines = _UTILITIES_FILE.read_text(encoding="utf-8").splitlines()
        return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    except OSError:
        return frozenset()


def utilities_of(commands: Iterable[str]) -> frozenset[str]:
    """The programs named by these commands (a set of known utilities); unparseable ones add nothing."""
    names = set()
    for command in commands:
        try:
            for words in simple_commands(command):
                names.update(p for p in programs_of(words) if _plain_name(p))
        except ParseError:
            continue
    return frozenset(names)


def _plain_name(word: str) -> bool:
    return bool(word) and "/" not in word and "$" not in word and "{{" not in word and word not in BUILTINS


class _Path:
    """Executables on PATH, looked up once per name and forgotten when PATH or one of its
    directories changes (a tool installed since is found on the next suggestion)."""

    def __init__(self):
        self.key = None
        self.found: dict[str, bool] = {}

    def has(self, name: str) -> bool:
        dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
        key = tuple((d, _mtime(d)) for d in dirs)
        if key != self.key:
            self.key, self.found = key, {}
        if name not in self.found:
            self.found[name] = any(os.access(os.path.join(d, name), os.X_OK)
                                   and os.path.isfile(os.path.join(d, name)) for d in dirs)
        return self.found[name]


def _mtime(directory: str) -> int:
    try:
        return os.stat(directory).st_mtime_ns
    except OSError:
        return 0


_path = _Path()


def program_problem(name: str, known: Container[str]) -> str | None:
    """None when `name` runs here; NOT_INSTALLED when known but missing; "unknown" when invented."""
    if not _plain_name(name) or name in _LEADERS or name in _CLOSERS or name in _NO_PROGRAM:
        return None
    if _path.has(name):
        return None
    if name in known or name in bundled_utilities():
        return NOT_INSTALLED
    return "unknown"


# -- candidates ------------------------------------------------------------------------------------
def check_candidates(candidates: list, known: Container[str] = frozenset()) -> list:
    """The candidates a user should see, each with its `checks` notes, re-ranked (see the module doc).
    `known`: utilities beyond the bundled list (the example index's). Candidates are the engine's
    Candidate records (command, score, source, checks)."""
    kept, seen = [], set()
    for candidate in candidates:
        checked = check_candidate(candidate, known)
        if checked is None:
            continue
        key = " ".join(checked.command.split())
        if key not in seen:
            seen.add(key)
            kept.append(checked)
    return sorted(kept, key=_rank)


def _rank(candidate) -> tuple:
    """The user's own answers first, in their order; then installed before not, then by score."""
    if _from_user(candidate):
        return (0,)
    return (1, any(note.startswith(NOT_INSTALLED) for note in candidate.checks), -candidate.score)


def check_candidate(candidate, known: Container[str] = frozenset()):
    """`candidate` cleaned and annotated, or None when it is not a command a user could run."""
    user = _from_user(candidate)
    command, removed = strip_non_command(candidate.command)
    notes = [f"cleaned: {', '.join(removed)}"] if removed else []
    if not command:
        return None
    try:
        commands = simple_commands(command)
    except ParseError as e:
        if not user:
            return None
        commands, notes = [], notes + [f"does not parse: {e}"]
    missing = []
    for words in commands:
        for program in programs_of(words):
            problem = program_problem(program, known)
            if problem == "unknown" and not user:
                return None
            if problem and program not in missing:
                missing.append(program)
    if missing:
        notes.append(f"{NOT_INSTALLED}: {', '.join(missing)}")
    return replace(candidate, command=command, checks=tuple(notes))


def _from_user(candidate) -> bool:
    return candidate.source.startswith(USER_SOURCE_PREFIX)
