"""The TinyLLM CLI pairs: `raw_cli_pairs.txt`, blocks of a line `Instruction`, the request, a line
`Command`, the command. Blank lines separate everything (also a header from its text), so the file is
read as a sequence of non-blank lines; a request or command that wraps onto several lines is joined
(requests with spaces, commands with newlines, since a newline in a command is meaningful)."""
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.records import Pair, clean_field, read_text, report_skipped

FILENAME = "raw_cli_pairs.txt"
_HEADERS = ("Instruction", "Command")


def parse_cli_pairs(text: str) -> tuple[list[Pair], int]:
    """The pairs in the file's text, and how many blocks were skipped (a header without its partner,
    an empty field, binary junk)."""
    pairs, bad = [], 0
    blocks: list[tuple[str, list[str]]] = []  # (header, its lines) in file order
    for line in text.splitlines():
        if line.strip() in _HEADERS:
            blocks.append((line.strip(), []))
        elif line.strip():
            if blocks:
                blocks[-1][1].append(line.strip())
            else:
                bad += 1  # text before the first header
    i = 0
    while i < len(blocks):
        header, lines = blocks[i]
        if header == "Instruction" and i + 1 < len(blocks) and blocks[i + 1][0] == "Command":
            request = clean_field(" ".join(lines))
            command = clean_field("\n".join(blocks[i + 1][1]))
            if request and command:
                pairs.append(Pair(request, command, "cli-pairs"))
            else:
                bad += 1
            i += 2
        else:
            bad += 1
            i += 1
    return pairs, bad


def read_cli_pairs(path: str | Path, skipped: Counter | None = None) -> Iterator[Pair]:
    """Pairs from `raw_cli_pairs.txt`, or from the folder holding it."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FILENAME
    pairs, bad = parse_cli_pairs(read_text(path))
    report_skipped(path, bad, skipped, "blocks")
    yield from pairs
