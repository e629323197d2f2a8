"""NL2Bash: `all.nl` and `all.cm`, where line i of one is the English request for line i of the other."""
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from training.data.records import Pair, clean_field, read_text, report_skipped
from training.errors import TrainingError


def read_nl2bash(root: str | Path, skipped: Counter | None = None) -> Iterator[Pair]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TrainingError(f"not an NL2Bash directory (expected all.nl and all.cm in it): {root}")
    requests = read_text(root / "all.nl").splitlines()
    commands = read_text(root / "all.cm").splitlines()
    # A count mismatch means every line after the first gap pairs the wrong request with a command.
    if len(requests) != len(commands):
        raise TrainingError(
            f"{root}: all.nl has {len(requests)} lines but all.cm has {len(commands)}; they must be parallel"
        )
    bad = 0
    for request, command in zip(requests, commands):
        request, command = clean_field(request), clean_field(command)
        if request and command:
            yield Pair(request, command, "nl2bash")
        else:
            bad += 1
    report_skipped(root, bad, skipped, "empty or unreadable lines")
