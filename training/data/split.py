"""Exact-pair dedup and a deterministic validation split with no leak into training.

The split promises: no request and no command of the validation set appears in training (compared after
`request_key` / `command_key` normalisation, so "List files." and "list files" count as one request).

How: a pair goes to validation when a hash of its command key falls below `val_fraction`, so every pair
sharing a command lands on the same side. A request then found on both sides is dropped from the side
where it is rarer: generic tldr requests ("Display help": ~700 pages, each its own command) stay in
training, where augmentation names each page's command, instead of vanishing from it.

Which side a pair is on depends only on its own command and the seed, not on order, so adding data never
moves a pair into validation (it can only cause drops). This is simpler than union-find over shared
requests/commands and avoids its failure mode: one giant component (`ls` reached from hundreds of
requests) that makes the validation size swing with the seed.
"""
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from engine.examples import request_key
from training.data.records import Pair

_SPACES = re.compile(r"\s+")


def command_key(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def dedup(pairs: Iterable[Pair]) -> list[Pair]:
    """Pairs with the same request and command (after key normalisation) kept once, first one wins,
    order kept."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in pairs:
        key = (request_key(pair.instruction), command_key(pair.command))
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    return kept


def in_validation(command: str, val_fraction: float, seed: str = "tinyllm") -> bool:
    digest = hashlib.blake2b(f"{seed}\0{command_key(command)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < val_fraction * 2**64


@dataclass
class Split:
    train: list[Pair]
    val: list[Pair]
    dropped: int  # pairs removed from either side because their request was on both


def split_pairs(pairs: Iterable[Pair], val_fraction: float = 0.05, seed: str = "tinyllm") -> Split:
    """Deduplicate `pairs` and split them; see the module docstring for the guarantee."""
    train, val = [], []
    for pair in dedup(pairs):
        (val if in_validation(pair.command, val_fraction, seed) else train).append(pair)
    train_counts = Counter(request_key(p.instruction) for p in train)
    val_counts = Counter(request_key(p.instruction) for p in val)
    val_kept = [p for p in val if val_counts[k := request_key(p.instruction)] >= train_counts[k]]
    val_requests = {request_key(p.instruction) for p in val_kept}
    train_kept = [p for p in train if request_key(p.instruction) not in val_requests]
    return Split(train_kept, val_kept, len(train) + len(val) - len(train_kept) - len(val_kept))
