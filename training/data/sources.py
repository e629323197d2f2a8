"""Name a data source with one string; get its records.

Pair sources ("KIND" or "KIND:PATH"): tldr, nl2bash, cli-pairs, core, jsonl. Without a path the kind's
folder under the default data directory is used; core, whose task files ship with the code, reads
training/data/core_tasks/ (jsonl needs a path).
Text sources: "text:PATH" (txt/md files or .jsonl with a "text" field), "man", "man:1,8" or
"man:1,8:2000" (this machine's man pages, by section, optionally an even sample of 2000), "hf:NAME" or "hf:NAME:CONFIG" (a Hugging Face dataset, streamed).

The default data directory is $TINYLLM_DATA, else `shared/data` beside the repository (the layout of a
development checkout: ../shared/data from the project root).
"""
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.cli_pairs import read_cli_pairs
from training.data.core_tasks import FOLDER as CORE_TASKS_FOLDER, read_core_tasks
from training.data.jsonl import read_jsonl
from training.data.nl2bash import read_nl2bash
from training.data.records import Pair
from training.data.text import hf_texts, man_pages, read_text_files
from training.data.tldr import read_tldr
from training.errors import TrainingError

PAIR_READERS = {"tldr": read_tldr, "nl2bash": read_nl2bash, "cli-pairs": read_cli_pairs,
                "core": read_core_tasks, "jsonl": read_jsonl}
# Folder of each kind under the data directory (shared/data/README.md).
DEFAULT_FOLDERS = {"tldr": "tldr", "nl2bash": "nl2bash", "cli-pairs": "tinyllm-cli-pairs"}
# Kinds whose data is part of the repository, found beside the code rather than in the data directory
# (so a GPU run's data archive, built from DEFAULT_FOLDERS, need not carry them).
SHIPPED_FOLDERS = {"core": CORE_TASKS_FOLDER}
DEFAULT_PAIR_SOURCES = ("tldr", "nl2bash", "cli-pairs")


def default_data_dir() -> Path:
    if value := os.environ.get("TINYLLM_DATA"):
        path = Path(value).expanduser()
        if not path.is_dir():
            raise TrainingError(f"TINYLLM_DATA is not a directory: {path}")
        return path
    path = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not path.is_dir():
        raise TrainingError(f"no data directory at {path}; set TINYLLM_DATA or give each source a path (tldr:PATH)")
    return path


def _kind_and_path(spec: str) -> tuple[str, str]:
    kind, _, path = spec.strip().partition(":")
    return kind.strip().lower(), path.strip()


def load_pairs(spec: str, skipped: Counter | None = None) -> Iterator[Pair]:
    """Pairs from one source named like "tldr", "tldr:/path/to/tldr", "jsonl:mine.jsonl". Raises
    TrainingError for an unknown kind, a bad path, or a source that holds no pairs at all."""
    kind, path = _kind_and_path(spec)
    if kind not in PAIR_READERS:
        kinds = ", ".join(PAIR_READERS)
        raise TrainingError(f"unknown pair source {spec!r}; expected one of {kinds} (as KIND or KIND:PATH)")
    if not path:
        if kind in SHIPPED_FOLDERS:
            path = str(SHIPPED_FOLDERS[kind])
        elif kind in DEFAULT_FOLDERS:
            path = str(default_data_dir() / DEFAULT_FOLDERS[kind])
        else:
            raise TrainingError(f"{kind} needs a path: {kind}:PATH")
    count = 0
    for pair in PAIR_READERS[kind](path, skipped=skipped):
        count += 1
        yield pair
    if not count:
        raise TrainingError(f"no pairs found in {path} (read as {kind})")


def load_texts(spec: str, skipped: Counter | None = None) -> Iterator[str]:
    """Documents from one text source named like "text:/path", "man", "man:1,8[:LIMIT]", "hf:NAME[:CONFIG]"."""
    kind, arg = _kind_and_path(spec)
    if kind == "text" and arg:
        return read_text_files(arg, skipped=skipped)
    if kind == "man":
        section_list, _, limit = arg.partition(":")
        sections = tuple(s.strip() for s in section_list.split(",") if s.strip()) or ("1", "8")
        if limit and not limit.isdigit():
            raise TrainingError(f"man page limit must be a number, not {limit!r} (e.g. man:1,8:2000)")
        return man_pages(sections, limit=int(limit) if limit else None, skipped=skipped)
    if kind == "hf" and arg:
        name, _, config = arg.partition(":")
        return hf_texts(name, config or None)
    raise TrainingError(f"unknown text source {spec!r}; expected text:PATH, man[:SECTIONS] or hf:NAME[:CONFIG]")
