"""Carrying the request's own words into a retrieved example: the example "Trace the route to
example.com" (`traceroute example.com`), read for "trace the route to 8.8.8.8", becomes
`traceroute 8.8.8.8`.

The two requests are aligned word by word (difflib). Where the request replaced a stretch of the
example's words, and one of those example words appears in the example's command as a whole
argument, the command takes the request's word in its place (a file name, a number, a host, a
branch, a subcommand: "abort a rebase" -> `git rebase --abort` becomes `git merge --abort` for "abort
a merge"). Replaced stretches of equal length map word for word (a number only to a number);
otherwise the one argument of the example's stretch takes the request's word of its shape (number,
path, file name), if exactly one.
The example's request is rewritten the same way, so a prompt never shows a pair that disagrees.
Nothing is guessed: an example whose command shares no replaced word comes back unchanged, and the
programs a command runs are never replaced ("Create a gzipped tar archive ..." read for "compress the
logs folder ..." must not become `folder -czf ...`).
"""
import difflib
import re

from .checks import ParseError, first_program, programs_in
from .examples import Example

_EDGE = ".,;:!?()[]"  # punctuation of the sentence, not of the word ("to example.com." ends a sentence)


def _words(text: str) -> list[str]:
    out = []
    for token in text.split():
        word = token.strip(_EDGE)
        if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'`":
            word = word[1:-1]  # a quoted value: the command quotes it its own way
        if word:
            out.append(word)
    return out


def _shape(word: str) -> str:
    if re.fullmatch(r"[+-]?\d+(?:\.\d+)?[a-zA-Z%]{0,3}", word):
        return "number"
    if "/" in word or word.startswith("~"):
        return "path"
    if re.search(r"\.[A-Za-z0-9]{1,5}$", word):
        return "file"
    return "word"


def _argument(word: str) -> re.Pattern:
    """`word` as a whole argument of a command: not part of a longer name, path or flag."""
    return re.compile(r"(?<![\w./-])" + re.escape(word) + r"(?![\w/-]|\.\w)")


def _programs(command: str) -> set[str]:
    try:
        return set(programs_in(command))
    except ParseError:
        return {first_program(command)}


def word_mapping(example_request: str, request: str, command: str) -> dict[str, str]:
    """Which of the example's words, found in its `command`, the request replaces, and with what."""
    old, new = _words(example_request), _words(request)
    present = {w for w in old if _argument(w).search(command)}
    if present:
        present -= _programs(command)
    if not present:
        return {}
    matcher = difflib.SequenceMatcher(a=[w.lower() for w in old], b=[w.lower() for w in new], autojunk=False)
    mapping: dict[str, str] = {}
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace":
            continue
        if i2 - i1 == j2 - j1:  # word for word; a number only by a number ("5 times" -> "five times" is no count)
            mapping.update((a, b) for a, b in zip(old[i1:i2], new[j1:j2])
                           if a in present and (_shape(a) == "number") <= (_shape(b) == "number"))
            continue
        args = [a for a in old[i1:i2] if a in present]
        if len(args) == 1:
            taken = {w.lower() for w in old}
            same = [b for b in new[j1:j2] if _shape(b) == _shape(args[0]) and b.lower() not in taken]
            if len(same) == 1:
                mapping[args[0]] = same[0]
    return {a: b for a, b in mapping.items() if a != b}


def _substitute(text: str, mapping: dict[str, str]) -> str:
    # One pass over all words at once, longest first, so a replacement is never replaced again.
    pattern = re.compile("|".join(_argument(w).pattern for w in sorted(mapping, key=len, reverse=True)))
    return pattern.sub(lambda m: mapping[m.group(0)], text)


def adapt(example: Example, request: str) -> Example:
    """`example` with the request's words in place of the ones it replaced (unchanged when none)."""
    mapping = word_mapping(example.request, request, example.command)
    if not mapping:
        return example
    return Example(_substitute(example.request, mapping), _substitute(example.command, mapping), example.source)


def adapt_all(examples: list[Example], request: str) -> list[Example]:
    return [adapt(e, request) for e in examples]
