"""tldr-pages: one pair per example of pages/{common,linux,osx}/*.md.

A page is `# title`, `> description` lines, then examples: `- description:`, a blank line, and the
command in backticks. The request is the description without the leading `- `, the trailing `:` and
tldr's mnemonic brackets (`[c]reate a [f]ile` -> `create a file`). In the command an option given with
its alternative spellings (`{{[-C|--directory]}}`) becomes the first one (`-C`); other `{{placeholders}}`
stay as written, so the model learns to leave a slot the user fills.
"""
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.records import Pair, clean_field, read_text, report_skipped
from training.errors import TrainingError

PLATFORMS = ("common", "linux", "osx")

# `[c]reate`, `E[x]tract`, `[inter]`: a short run of letters or digits, no spaces. Longer bracketed text
# (`[no personal information]`, JSON) is prose and stays.
_MNEMONIC = re.compile(r"\[([A-Za-z0-9]{1,6})\]")
# `{{[-C|--directory]}}` -> `-C`; the first alternative keeps a trailing space if it has one (`[-g |--glob=]`).
_ALTERNATIVES = re.compile(r"\{\{\[([^\[\]{}|]+)\|[^\[\]{}]*\]\}\}")
# Examples run inside an interactive program (`/status` in a chat client), not in a shell.
_INTERACTIVE = "[Interactive]"


def clean_description(line: str) -> str:
    text = line.strip().removeprefix("-").strip().removesuffix(":").strip()
    return _MNEMONIC.sub(r"\1", text)


def clean_command(line: str) -> str:
    text = line.strip()
    if len(text) >= 2 and text.startswith("`") and text.endswith("`"):
        text = text[1:-1]
    return _ALTERNATIVES.sub(r"\1", text).strip()


def parse_page(text: str, topic: str = "") -> tuple[list[Pair], int]:
    """The page's pairs and how many examples were skipped. `topic` defaults to the page's `# title`."""
    pairs, skipped = [], 0
    description = None
    for line in text.splitlines():
        if line.startswith("# ") and not topic:
            topic = line[2:].strip()
        elif line.startswith("- "):
            if description is not None:
                skipped += 1  # a description with no command after it
            description = line
        elif line.startswith("`") and description is not None:
            request, command = clean_field(clean_description(description)), clean_field(clean_command(line))
            if request and command and not description[2:].lstrip().startswith(_INTERACTIVE):
                pairs.append(Pair(request, command, "tldr", topic))
            else:
                skipped += 1
            description = None
    return pairs, skipped + (description is not None)


def _pages_dir(root: Path) -> Path:
    for candidate in (root / "pages", root):
        if any((candidate / p).is_dir() for p in PLATFORMS):
            return candidate
    raise TrainingError(f"not a tldr-pages directory (no pages/{{{','.join(PLATFORMS)}}}): {root}")


def read_tldr(root: str | Path, platforms=PLATFORMS, skipped: Counter | None = None) -> Iterator[Pair]:
    """Pairs from a tldr-pages checkout (the folder holding `pages/`, or `pages/` itself)."""
    pages = _pages_dir(Path(root).expanduser())
    bad_total = 0
    for platform in platforms:
        for path in sorted((pages / platform).glob("*.md")):
            pairs, bad = parse_page(read_text(path))
            bad_total += bad
            yield from pairs
    # One line for the whole tree: per-page warnings would bury the log.
    report_skipped(pages, bad_total, skipped, "examples (interactive-only or malformed)")
