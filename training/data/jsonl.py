"""JSON Lines pairs: one object per line with string fields `instruction` and `command` (the format a
user exports their own pairs in, and the feedback store's export)."""
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.records import Pair, read_text, report_skipped
from training.errors import TrainingError


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise TrainingError(f"no .jsonl files in {path}")
        return files
    return [path]


def read_jsonl(path: str | Path, skipped: Counter | None = None, source: str = "jsonl") -> Iterator[Pair]:
    """Pairs from a .jsonl file or every .jsonl file of a folder. Lines that are not such an object
    are skipped and counted; a file where no line is one is an error (likely the wrong file)."""
    for file in _files(Path(path).expanduser()):
        good = bad = 0
        for line in read_text(file).splitlines():
            if not line.strip():
                continue
            try:
                pair = Pair.from_dict(json.loads(line), source)
            except ValueError:
                pair = None
            if pair:
                good += 1
                yield pair
            else:
                bad += 1
        if bad and not good:
            raise TrainingError(f"{file}: no line is a JSON object with string 'instruction' and 'command'")
        report_skipped(file, bad, skipped, "malformed lines")
