"""The record every pair reader yields, and the checks all readers apply to a line of input."""
import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.tokenizer import INVISIBLE
from training.errors import TrainingError

log = logging.getLogger("tinyllm.training.data")


@dataclass(frozen=True)
class Pair:
    instruction: str
    command: str
    source: str
    # The command a tldr page is about ("tar", "git commit"): most tldr descriptions do not name it,
    # so augmentation uses it to write requests that do. Empty for other sources.
    topic: str = ""

    def reversed(self) -> "Pair":
        """The pair read the other way, command in and request out: what a reviewer learns from."""
        return Pair(self.command, self.instruction, self.source)

    def to_dict(self) -> dict:
        """The form pairs take in JSON Lines files and checkpoint metadata (replay and eval samples)."""
        return {"instruction": self.instruction, "command": self.command}

    @classmethod
    def from_dict(cls, item, source: str) -> "Pair | None":
        """The pair in a `to_dict`-shaped object, or None when it is not one with two clean strings."""
        try:
            instruction, command = item["instruction"], item["command"]
        except (KeyError, TypeError, IndexError):
            return None
        if not (isinstance(instruction, str) and isinstance(command, str)):
            return None
        instruction, command = clean_field(instruction), clean_field(command)
        return cls(instruction, command, source) if instruction and command else None


def clean_field(text: str) -> str | None:
    """`text` stripped of invisible characters (a soft hyphen in an NL2Bash command), or None when it
    is empty or holds binary junk (NUL, control characters, or U+FFFD from undecodable bytes) -- such
    a line is skipped, not trained on."""
    text = INVISIBLE.sub("", text).strip()
    if not text or "\ufffd" in text:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in text):
        return None
    return text


def read_text(path: Path) -> str:
    """The file's text; undecodable bytes become U+FFFD so `clean_field` can skip those lines."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise TrainingError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise TrainingError(f"expected a file, found a directory: {path}") from None
    except OSError as exc:
        raise TrainingError(f"cannot read {path}: {exc.strerror}") from None


def report_skipped(path: Path, count: int, skipped: Counter | None, what: str = "malformed entries") -> None:
    """Log a one-line summary of what a reader skipped in `path`, and add it to the caller's counter
    (keyed by path) when one was given."""
    if count:
        log.warning("skipped %d %s in %s", count, what, path)
        if skipped is not None:
            skipped[str(path)] += count
