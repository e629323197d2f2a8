"""Checks on every candidate before a user sees it: is it a command line, and does it run real tools?

- What is not a command is cleaned (a markdown fence, a list number, a `$ ` or `# ` prompt, invisible
  characters, quotes around the whole line) or dropped when nothing is left.
- The line must parse as bash. tree-sitter-bash, a maintained grammar of all of bash (`case`, heredocs,
  every compound command), builds its syntax tree and flags unclosed quotes and substitutions,
  unfinished `if`/`for`/`case`, an operator without its command, a redirection without its target; the
  simple commands are found anywhere in the tree (`$(...)`, backquotes, `<(...)`, subshells, loop and
  `case` bodies). About 15-25 µs a line, the walk over the tree included.
  Not `bash -n`: a process per candidate costs milliseconds, and a persistent bash would have to execute
  model output to parse it.
- Every simple command's program (through `sudo`, `env`, `xargs`, ... and assignments) must be a
  shell builtin or keyword, a path, an executable on PATH, a word of the request (the user's, not the
  model's invention: `npm-why`), or a utility known from training data or the example index. Unknown ones (invented by the model) are dropped; known but missing ones are kept
  and marked "not installed".
- Doubts, noted and moved last within the list by the engine (`doubtful_last`): a long option the
  program never takes in the example index (`gzip -d --install`), an argument named twice (`tar -czf
  a.tgz a.tgz`).
Duplicates (same words after whitespace is collapsed) merge; the user's own answers go first, the
rest keep the engine's order (a stable sort). A missing tool is a note, not a demotion: the right
command for a tool the user has yet to install is still the right command, and putting it last cost
NLC2CMD 0.035 on the validation split (docs/experiments/grounded2.md, "Same request first"). Only a reviewed ranking
weighs it, as a small cost between near-equals (`runs_missing_program`, engine/review.py).
"""
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Container, Iterable, Iterator, Mapping

import tree_sitter_bash
from tree_sitter import Language, Parser

from .errors import EngineError
from .tokenizer import INVISIBLE

USER_SOURCE_PREFIX = "your "  # "your correction #N", "your acceptance #N": never dropped
NOT_INSTALLED = "not installed"
UNSEEN_OPTION = "unseen option"
REPEATED_ARGUMENT = "repeated argument"
# Notes that move a candidate last within its list: on the validation split no first candidate with
# one was right (docs/experiments/grounded2.md, "Doubtful candidates last").
DOUBTS = (UNSEEN_OPTION, REPEATED_ARGUMENT)
SHARED_BY = 25  # a long option this many programs use (--help, --version, --verbose) is no one's invention
_UTILITIES_FILE = Path(__file__).parent / "bundled" / "utilities.txt"

BUILTINS = frozenset("""
. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo
enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf
pushd pwd read readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit
umask unalias unset wait autoload bindkey emulate float functions integer limit noglob print rehash sched setopt
unfunction unlimit unsetopt vared whence where which zle zmodload zstyle time coproc
""".split())
# Syntax nodes that are simple commands, and those whose value is known only when the line runs.
_SIMPLE = frozenset({"command", "declaration_command", "unset_command", "variable_assignments"})
_EXPANSIONS = frozenset({"simple_expansion", "expansion", "command_substitution", "process_substitution",
                         "arithmetic_expansion", "ansi_c_string", "translated_string"})
# Reserved words bash refuses as a command's first word; tree-sitter parses them as names.
_MISPLACED = frozenset({b"then", b"else", b"elif", b"fi", b"do", b"done", b"esac", b"}"})
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
_ESCAPE = re.compile(r"\\(.)", re.S)
_PLACEHOLDER = re.compile(rb"\{\{.*?\}\}", re.S)
_FENCE = re.compile(r"^```(?:bash|sh|shell|zsh|console|shell-session|text)?\s*|\s*```$")
_LIST_MARK = re.compile(r"^(?:\d+[.)]|[-*•])\s+")
_PROMPT = re.compile(r"^[$#]\s+")
_REQUEST_WORD = re.compile(r"[\w.+-]+")  # a program name as a request may spell it
_LONG_OPTION = re.compile(r"--[A-Za-z0-9][\w-]*")
_SEGMENT_END = re.compile(r"\|\|?|&&|;|`|\$\(|[()]")
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
        for label, pattern in (("markdown fence", _FENCE), ("list number", _LIST_MARK), ("prompt", _PROMPT),
                               ("invisible characters", INVISIBLE)):
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
def _parse(source: bytes):
    """The tree-sitter tree of `source`; one parser per process, built on first use (parsers must
    not parse for two threads at once: the lock costs well under a microsecond)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = Parser(Language(tree_sitter_bash.language()))
        return _parser.parse(source)


_parser = None
_parser_lock = threading.Lock()


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a command line (nested ones included), each a list of its words
    (leading assignments included; a word with an expansion holds "$"); raises ParseError where
    bash would refuse the line."""
    source = line.encode()
    # A tldr placeholder is one word whatever it holds ({{a|b}} is no pipe): parse a same-length mask.
    tree = _parse(_PLACEHOLDER.sub(lambda m: b"_" * len(m[0]), source))
    if tree.root_node.has_error:
        raise ParseError(_error_reason(tree.root_node, source))
    commands: list[list[str]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in _SIMPLE:
            name = node.child_by_field_name("name")
            if name is not None and name.text in _MISPLACED:  # tree-sitter takes a stray `fi` for a command
                raise ParseError(f"unexpected '{name.text.decode()}'")
            commands.append([_word(child, source) for child in node.children if not child.type.endswith("_redirect")])
        elif kind == "variable_assignment" and node.parent.type not in _SIMPLE:  # `A=1` alone
            commands.append([_word(node, source)])
        elif kind == ";;" and node.parent.type != "case_item":
            raise ParseError("';;' outside case")
        stack.extend(reversed(node.children))
    return commands


def _word(node, source: bytes) -> str:
    """A word as bash passes it on: quotes and backslashes removed, "$" for what expands."""
    kind = node.type
    if kind in _EXPANSIONS:
        return "$"
    if kind == "string" and any(child.type in _EXPANSIONS for child in node.children):
        return "$"
    text = source[node.start_byte:node.end_byte].decode()
    if kind == "raw_string":
        return text[1:-1]
    if kind in ("word", "string"):
        return _ESCAPE.sub(r"\1", text[1:-1] if kind == "string" else text)
    if node.child_count:  # a concatenation, an assignment, a command's name
        return "".join(_word(child, source) for child in node.children)
    return text


def _error_reason(root, source: bytes) -> str:
    """Where the first error of the tree is, in a few words."""
    node = root
    while not (node.type == "ERROR" or node.is_missing):
        node = next(child for child in node.children if child.has_error or child.is_missing)
    error_end = node.end_byte
    while node.child_count:
        node = node.children[0]
    line = source[:node.start_byte].decode(errors="replace").split("\n")
    where = f"column {len(line[-1]) + 1}" + (f" of line {len(line)}" if len(line) > 1 else "")
    if node.is_missing:
        return f"a word is missing near {where}" if node.is_named else f"'{node.type}' is missing near {where}"
    if node.end_byte < error_end >= len(source.rstrip()):  # the rest of the line is in the error
        return f"unfinished near {where}"
    return f"unexpected '{source[node.start_byte:node.end_byte].decode(errors='replace')}' near {where}"


def programs_of(words: list[str]) -> list[str]:
    """Every program a simple command names: `sudo -u bob nice -n 5 tar ...` -> sudo, nice, tar."""
    i, out = 0, []
    while i < len(words):
        word = words[i]
        if _ASSIGNMENT.match(word) and not out:
            i += 1
            continue
        out.append(word)
        if word not in _WRAPPERS:
            return out
        takes_value, operands = _WRAPPERS[word]
        i += 1
        while i < len(words) and (words[i].startswith("-") or (word == "env" and _ASSIGNMENT.match(words[i]))):
            i += 2 if words[i] in takes_value else 1
        i += operands
    return out


def programs_in(command: str) -> list[str]:
    """Every program a command line runs, in every simple command (raises ParseError)."""
    return [program for words in simple_commands(command) for program in programs_of(words)]


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
            names.update(p for p in programs_in(command) if _plain_name(p))
        except ParseError:
            continue
    return frozenset(names)


def _plain_name(word: str) -> bool:
    return bool(word) and "/" not in word and "$" not in word and "{{" not in word and word not in BUILTINS


class _Path:
    """Executables on PATH, looked up once per name and forgotten when PATH or one of its
    directories changes (a tool installed since is found on the next suggestion)."""

    def __init__(self):
        self.dirs: list[str] = []
        self.key = None
        self.found: dict[str, bool] = {}

    def refresh(self) -> None:
        """Notice a changed PATH or PATH directory: once per list of candidates, not per program."""
        self.dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
        key = tuple((d, _mtime(d)) for d in self.dirs)
        if key != self.key:
            self.key, self.found = key, {}

    def has(self, name: str) -> bool:
        if name not in self.found:
            self.found[name] = any(os.access(os.path.join(d, name), os.X_OK)
                                   and os.path.isfile(os.path.join(d, name)) for d in self.dirs)
        return self.found[name]


def _mtime(directory: str) -> int:
    try:
        return os.stat(directory).st_mtime_ns
    except OSError:
        return 0


_path = _Path()


def program_problem(name: str, known: Container[str], named: Container[str] = ()) -> str | None:
    """None when `name` runs here; NOT_INSTALLED when known (or `named` by the request) but missing;
    "unknown" when invented."""
    if not _plain_name(name):
        return None
    if _path.has(name):
        return None
    if name in named or name in known or name in bundled_utilities():
        return NOT_INSTALLED
    return "unknown"


# -- options ---------------------------------------------------------------------------------------
def program_options(command: str) -> Iterator[tuple[str, list[str]]]:
    """(program, its long options) for each piece of `command` between `|`, `;`, `&&`, `$(` ...,
    read without parsing (the 41k commands of an index in a fraction of a second):
    `sudo tar --create -f x | gzip --best` -> ("tar", ["--create"]), ("gzip", ["--best"])."""
    for segment in _SEGMENT_END.split(command):
        words = segment.split()
        programs = programs_of(words)
        if programs:
            yield programs[-1], [m[0] for m in map(_LONG_OPTION.fullmatch, (w.split("=", 1)[0] for w in words)) if m]


@dataclass(frozen=True)
class KnownOptions:
    """The long options each program's known commands use, and those many programs share. A model
    that writes another (`gzip -d --install`) invented it: 73 of the model's 1,955 first candidates
    on the validation split had one, none of them right (docs/experiments/grounded2.md, "Doubtful candidates last")."""
    by_program: Mapping[str, frozenset[str]] = field(default_factory=dict)
    shared: frozenset[str] = frozenset()

    @classmethod
    def of(cls, commands: Iterable[str]) -> "KnownOptions":
        by_program: dict[str, set[str]] = {}
        for command in commands:
            for program, options in program_options(command):
                by_program.setdefault(program, set()).update(options)
        users = Counter(option for options in by_program.values() for option in options)
        return cls({p: frozenset(o) for p, o in by_program.items()},
                   frozenset(o for o, n in users.items() if n >= SHARED_BY))

    def with_commands(self, commands: Iterable[str]) -> "KnownOptions":
        """These options and those `commands` use (the user's few: cheap next to `of` over an index)."""
        by_program = dict(self.by_program)
        for program, options in KnownOptions.of(commands).by_program.items():
            by_program[program] = by_program.get(program, frozenset()) | options
        return KnownOptions(by_program, self.shared)

    def unseen(self, command: str, request: str = "") -> list[str]:
        """The long options of `command` its program is not known to take (and the request does not name)."""
        out: list[str] = []
        for program, options in program_options(command):
            known = self.by_program.get(program)
            if known is not None:
                out += [o for o in options if o not in known and o not in self.shared and o not in request and o not in out]
        return out


# -- candidates ------------------------------------------------------------------------------------
def first_program(command: str) -> str:
    """A command's first word: its program, read without parsing (`sudo tar ...` is sudo)."""
    words = command.split(None, 1)
    return words[0] if words else ""


def same_command_key(command: str) -> str:
    """What two commands that differ only in spacing have in common: one candidate, not two."""
    return " ".join(command.split())


def first_of_each(candidates: list) -> list:
    """The candidates without the later ones of the same command (spacing aside)."""
    seen: set[str] = set()
    out = []
    for candidate in candidates:
        key = same_command_key(candidate.command)
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out


def check_candidates(candidates: list, known: Container[str] = frozenset(), request: str = "",
                     options: KnownOptions = KnownOptions()) -> list:
    """The candidates a user should see for `request`, each with its `checks` notes, the user's first (see
    the module doc). `known`: utilities beyond the bundled list (the example index's); `options`: the
    long options known for each program. Candidates are the engine's Candidate records (command,
    score, source, checks)."""
    _path.refresh()
    named = frozenset(_REQUEST_WORD.findall(request))
    checked = (_check_candidate(candidate, known, named, options, request) for candidate in candidates)
    return sorted(first_of_each([c for c in checked if c is not None]), key=_rank)


def runs_missing_program(commands: list[str], request: str = "") -> list[bool]:
    """For each command, whether it runs a program this machine lacks and the request does not name
    (one that does not parse: False, the checks judge it)."""
    _path.refresh()
    named = frozenset(_REQUEST_WORD.findall(request))
    out = []
    for command in commands:
        try:
            programs = programs_in(command)
        except ParseError:
            programs = []
        out.append(any(p not in named and program_problem(p, ()) for p in programs))
    return out


def _rank(candidate) -> bool:
    """The user's own answers first; the sort is stable, so otherwise the engine's order stands."""
    return not _from_user(candidate)


def doubtful_last(candidates: list) -> list:
    """The candidates with a doubt (an unseen option, a repeated argument) after the others, in a
    stable sort: the list's first place goes to a command without one; the list keeps its commands."""
    return sorted(candidates, key=lambda c: any(note.startswith(DOUBTS) for note in c.checks))


def repeated_arguments(commands: list[list[str]]) -> list[str]:
    """Arguments a simple command names twice (`tar -czf logs.tar.gz logs.tar.gz`): a model
    repeating itself. 3 of the 1,955 validation commands do it (`sort -o f f`), 38 of the model's
    first candidates did, none of them right."""
    out: list[str] = []
    for words in commands:
        seen: set[str] = set()
        for word in words[len(programs_of(words)):]:
            if len(word) < 2 or word[0] == "-" or "$" in word or "{" in word or word in out:
                continue
            if word in seen:
                out.append(word)
            seen.add(word)
    return out


def _check_candidate(candidate, known: Container[str], named: Container[str], options: KnownOptions, request: str):
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
            problem = program_problem(program, known, named)
            if problem == "unknown" and not user:
                return None
            if problem and program not in missing:
                missing.append(program)
    if missing:
        notes.append(f"{NOT_INSTALLED}: {', '.join(missing)}")
    if not user:
        unseen, repeated = options.unseen(command, request), repeated_arguments(commands)
        notes += [f"{UNSEEN_OPTION}: {', '.join(unseen)}"] * bool(unseen)
        notes += [f"{REPEATED_ARGUMENT}: {', '.join(repeated)}"] * bool(repeated)
    return replace(candidate, command=command, checks=tuple(notes))


def _from_user(candidate) -> bool:
    return candidate.source.startswith(USER_SOURCE_PREFIX)
