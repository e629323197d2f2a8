"""The documentation corpus a model is pretrained on before it sees pairs: what a shell model should
have read (MODEL_CARD.md, issue 27; DocPrompting's finding that documentation helps with unseen tools).

- this machine's man pages (sections 1 and 8, then 5 and 7), rendered to plain text; a family of
  generated pages (gcloud ships 16,000 `gcloud_*` pages here) is capped so it cannot drown the rest;
- tldr pages as text and NL2Bash commands, rebuilt from the *training* split's pairs only;
- shell scripts found on this machine (`#!/bin/sh`, bash).

Documents are deduplicated by content, and every line that is a validation request or command is
dropped, so no validation pair is in the corpus. It is written as one `.jsonl.xz` file of
`{"text", "source"}` lines: a text source (`text:PATH`) that travels compressed.
"""
import hashlib
import json
import lzma
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from engine.atomic import atomic_path
from training.data.records import Pair
from training.data.text import MAN_ROOT, man_page_files, render_man_page, render_command
from training.errors import TrainingError, writing

MAN_SECTIONS = ("1", "8", "5", "7")
FAMILY_CAP = 100  # man pages per family (`gcloud_*`, `git-*`), an even sample beyond that
SCRIPT_ROOTS = ("/usr/share", "/usr/lib", "/usr/bin", "/usr/sbin", "/etc")
SCRIPT_BYTES = (200, 100_000)  # smaller is a stub, larger is generated
_SHEBANG = re.compile(rb"^#!\s*(/usr)?/bin/(env\s+)?(ba|da)?sh\b")
PAIRS_PER_DOC = 200  # NL2Bash commands (and other untitled pairs) per document


@dataclass
class CorpusSpec:
    man_sections: tuple[str, ...] = MAN_SECTIONS
    family_cap: int = FAMILY_CAP
    scripts: bool = True
    man_root: Path = MAN_ROOT
    script_roots: tuple[str, ...] = SCRIPT_ROOTS


@dataclass
class CorpusStats:
    documents: Counter = field(default_factory=Counter)  # per source
    chars: Counter = field(default_factory=Counter)
    duplicates: int = 0
    validation_lines: int = 0  # lines dropped because a validation pair holds them

    def to_dict(self) -> dict:
        return {"documents": dict(self.documents), "chars": dict(self.chars), "duplicates": self.duplicates,
                "validation_lines_dropped": self.validation_lines}


def family(path: Path) -> str:
    """`gcloud_compute_instances_list.1.gz` -> `gcloud`, `git-commit.1.gz` -> `git`, `ls.1.gz` -> `ls`."""
    return re.split(r"[_\-.]", path.name, maxsplit=1)[0]


def capped_man_files(spec: CorpusSpec) -> list[Path]:
    """Each section's pages, at most `family_cap` per family (spread evenly over the family)."""
    by_family: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in man_page_files(spec.man_sections, spec.man_root):
        by_family[(path.parent.name, family(path))].append(path)
    files = []
    for pages in by_family.values():
        if len(pages) > spec.family_cap:
            pages = [pages[i * len(pages) // spec.family_cap] for i in range(spec.family_cap)]
        files += pages
    return sorted(files, key=lambda p: (spec.man_sections.index(p.parent.name.removeprefix("man")), p.name))


def man_documents(spec: CorpusSpec, progress: bool = True) -> Iterator[tuple[str, str]]:
    command = render_command()
    files = capped_man_files(spec)
    if command is None or not files:
        return
    for path in tqdm(files, desc="man pages", unit="page", disable=not progress, dynamic_ncols=True):
        if text := render_man_page(path, command):
            yield "man", text


def pair_documents(pairs: Iterable[Pair]) -> Iterator[tuple[str, str]]:
    """tldr examples as their pages (one document per tool: its requests and commands); other sources'
    commands, one per line, in documents of `PAIRS_PER_DOC`."""
    pages: dict[str, list[str]] = defaultdict(list)
    commands: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        if pair.source == "tldr":
            pages[pair.topic or pair.command.split()[0]].append(f"- {pair.instruction}:\n  {pair.command}")
        else:
            commands[pair.source].append(pair.command)
    for topic in sorted(pages):
        yield "tldr", f"# {topic}\n\n" + "\n\n".join(pages[topic])
    for source, lines in sorted(commands.items()):
        for start in range(0, len(lines), PAIRS_PER_DOC):
            yield source, "\n".join(lines[start:start + PAIRS_PER_DOC])


def script_files(roots: Iterable[str]) -> Iterator[Path]:
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(folder) / name
                try:
                    if path.is_symlink() or not SCRIPT_BYTES[0] <= path.stat().st_size <= SCRIPT_BYTES[1]:
                        continue
                    with path.open("rb") as f:
                        head = f.read(64)
                except OSError:
                    continue
                if _SHEBANG.match(head):
                    yield path


def script_documents(roots: Iterable[str]) -> Iterator[tuple[str, str]]:
    for path in script_files(roots):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # binary junk after a shebang: not a script to learn from
        yield "script", text


def without_lines(text: str, banned: set[str]) -> tuple[str, int]:
    """`text` less every line whose content (stripped, without a `$ ` prompt or backticks) is banned."""
    kept, dropped = [], 0
    for line in text.splitlines():
        core = line.strip().removeprefix("$ ").strip("`").strip()
        if core and core in banned:
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def corpus_documents(spec: CorpusSpec, train_pairs: list[Pair], val_pairs: list[Pair],
                     stats: CorpusStats, progress: bool = True) -> Iterator[dict]:
    """Every document once, with no line of a validation pair; `stats` counts as it goes."""
    banned = {p.command.strip() for p in val_pairs} | {p.instruction.strip() for p in val_pairs}
    seen: set[bytes] = set()
    sources = [pair_documents(train_pairs), man_documents(spec, progress)]
    if spec.scripts:
        sources.append(script_documents(spec.script_roots))
    for documents in sources:
        for source, text in documents:
            text, dropped = without_lines(text, banned)
            stats.validation_lines += dropped
            key = hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).digest()
            if not text.strip():
                continue
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            stats.documents[source] += 1
            stats.chars[source] += len(text)
            yield {"text": text, "source": source}


def write_corpus(path: str | Path, documents: Iterable[dict]) -> int:
    """Write documents to `path` (.jsonl.xz) atomically; returns how many. None at all is an error."""
    path = Path(path)
    count = 0
    with writing(path), atomic_path(path, 0o644) as tmp, lzma.open(tmp, "wt", encoding="utf-8", preset=6) as f:
        for doc in documents:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
            count += 1
        if not count:
            raise TrainingError(f"{path}: no documents for the corpus (no man pages, pairs or scripts found)")
    return count


def build_corpus(out: str | Path, spec: CorpusSpec, train_pairs: list[Pair], val_pairs: list[Pair]) -> tuple[int, CorpusStats]:
    """The corpus of `spec` written to `out`: how many documents, and what each source gave."""
    stats = CorpusStats()
    return write_corpus(out, corpus_documents(spec, train_pairs, val_pairs, stats)), stats
