"""Pretraining text: documents (str) from local files, the machine's man pages, or a Hugging Face dataset.

Every source is a generator, one document at a time, so a corpus of any size streams through in flat
memory. Large local files are cut into chunks at blank lines rather than read whole into one document.
"""
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.records import report_skipped
from training.errors import TrainingError

TEXT_SUFFIXES = (".txt", ".md", ".text", ".rst")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.xz")  # compressed: a corpus that travels (data/corpus.py)
MAN_ROOT = Path("/usr/share/man")
MAN_WIDTH = "80"
# A document longer than this is cut at a paragraph break: the tokenizer trainer skips very long
# sentences and shards do not need document boundaries to fall anywhere in particular.
CHUNK_CHARS = 64_000
# Overstrike sequences (`x\bx` bold, `_\bx` underline) some man/grotty builds emit even to a pipe.
_OVERSTRIKE = re.compile(r".\x08")


def _chunks(lines: Iterator[str], limit: int) -> Iterator[str]:
    """Join lines into documents of at most ~`limit` characters, cutting only after a blank line
    (or mid-paragraph when a paragraph alone is over the limit)."""
    buf: list[str] = []
    size = 0
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= limit and (not line.strip() or size >= 2 * limit):
            if doc := "".join(buf).strip():
                yield doc
            buf, size = [], 0
    if doc := "".join(buf).strip():
        yield doc


def _is_jsonl(path: Path) -> bool:
    return path.name.endswith(JSONL_SUFFIXES)


def _jsonl_texts(path: Path, field: str, skipped: Counter | None) -> Iterator[str]:
    bad = 0
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                text = json.loads(line)[field]
            except (ValueError, KeyError, TypeError):
                text = None
            if isinstance(text, str) and text.strip():
                yield text
            else:
                bad += 1
    report_skipped(path, bad, skipped, f"lines without a string '{field}'")


def read_text_files(path: str | Path, field: str = "text", skipped: Counter | None = None,
                    chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Documents from a text/markdown file (cut into ~`chunk_chars` pieces), a .jsonl file, plain or
    compressed (the `field` of each line), or every such file under a folder (recursively, in sorted order)."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix in TEXT_SUFFIXES or _is_jsonl(p)))
        if not files:
            raise TrainingError(f"no text files ({', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES)}) in {path}")
    elif path.exists():
        files = [path]
    else:
        raise TrainingError(f"no such file or directory: {path}")
    for file in files:
        if _is_jsonl(file):
            yield from _jsonl_texts(file, field, skipped)
            continue
        try:
            f = file.open(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise TrainingError(f"cannot read {file}: {exc.strerror}") from None
        with f:
            yield from _chunks(f, chunk_chars)


def man_page_files(sections=("1", "8"), root: Path = MAN_ROOT) -> list[Path]:
    """The English man page sources of `sections` (man/manN/*), sorted; empty when there are none."""
    files: list[Path] = []
    for section in sections:
        folder = Path(root) / f"man{section}"
        if folder.is_dir():
            # Symlinked pages are aliases of another page: render each page once.
            files.extend(sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink()))
    return files


def render_command() -> list[str] | None:
    """How to turn one page source into plain text here: man, else groff, else None."""
    if shutil.which("man"):
        return ["man", "-l", "-P", "cat", "-"]
    if shutil.which("groff"):
        return ["groff", "-man", "-Tutf8", "-P-cbou"]
    return None


def render_man_page(path: Path, command: list[str]) -> str | None:
    """One page as plain text, or None when it cannot be read or rendered (a broken page is skipped)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            source = f.read()
        env = dict(os.environ, MANWIDTH=MAN_WIDTH, MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
        done = subprocess.run(command, input=source, capture_output=True, timeout=30, env=env)
    except (OSError, EOFError, subprocess.TimeoutExpired):
        return None
    text = _OVERSTRIKE.sub("", done.stdout.decode("utf-8", errors="replace")).strip()
    return text if done.returncode == 0 and text else None


def man_pages(sections=("1", "8"), root: Path = MAN_ROOT, limit: int | None = None,
              skipped: Counter | None = None) -> Iterator[str]:
    """The machine's man pages rendered to plain text, one page per document. Yields nothing (with a
    warning) when the machine has no man pages or nothing to render them with."""
    files = man_page_files(sections, root)
    command = render_command()
    if not files or command is None:
        report_skipped(Path(root), 1, skipped, "man page sources (none found, or neither man nor groff installed)")
        return
    if limit is not None and limit < len(files):
        # An even spread over the alphabet, not the first `limit` pages (all "a..." tools).
        files = [files[i * len(files) // limit] for i in range(limit)]
    bad = 0
    for path in files:
        if text := render_man_page(path, command):
            yield text
        else:
            bad += 1
    report_skipped(Path(root), bad, skipped, "man pages that failed to render")


def hf_texts(name: str, config: str | None = None, split: str = "train", field: str = "text",
             data_files=None, limit: int | None = None) -> Iterator[str]:
    """Documents from a Hugging Face dataset, streamed (nothing is downloaded whole). Works as well for
    local files through the generic builders: `hf_texts("json", data_files="corpus.jsonl")`.
    Needs the optional `datasets` package; asks for it at once rather than on the first document."""
    try:
        import datasets  # heavy, and optional: only this source needs it
    except ImportError:
        raise TrainingError("hf: sources need the hf extra: pip install 'tinyllm[hf]'") from None
    return _hf_stream(datasets, name, config, split, field, data_files, limit)


def _hf_stream(datasets, name, config, split, field, data_files, limit) -> Iterator[str]:
    try:
        stream = datasets.load_dataset(name, config, split=split, streaming=True, data_files=data_files)
        for i, example in enumerate(stream):
            if limit is not None and i >= limit:
                return
            if field not in example:
                raise TrainingError(f"dataset {name!r} has no field {field!r} (fields: {', '.join(example)})")
            if isinstance(example[field], str) and example[field].strip():
                yield example[field]
    except TrainingError:
        raise
    except Exception as exc:  # datasets raises many types (network, missing config, bad files)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"cannot stream dataset {name!r}: {message}") from None
