"""Retrieved examples for training: what each training example reads in its prompt.

Neighbours come from the training index (the training split's pairs), found with the example's own
request, exactly as the engine finds them at run time. Two rules make the model learn to adapt:
- never the example's own pair;
- mostly no pair with the same command (validation and new requests have no such twin), but in
  `copy_rate` of examples one such pair goes nearest the request, so the model learns to copy a
  known answer (that is what a user's correction is).
Neighbours are adapted to the example's request (its file names, numbers, hosts put into them), as the
engine adapts them at run time; a neighbour that becomes the answer itself teaches copying an adapted one.
The number of neighbours varies per example (0 to k), so one model serves any k up to its own.
"""
import multiprocessing
import os
import random
from collections import defaultdict

from engine.adapt import adapt_all
from engine.examples import Example, ExampleIndex, examples_path, load_examples, save_examples

from .data.records import Pair

SEARCH_DEPTH = 12  # hits looked at per example before the rules above filter them
NO_EXAMPLES_RATE = 0.05  # examples trained with an empty context: the model still answers without an index
PARALLEL_FROM = 5000  # searches worth forking worker processes for (160k take 90 s on one core)

_index: ExampleIndex | None = None  # the index forked workers search (set before the pool forks)


def _search(job: tuple[str, int]) -> list[int]:
    request, origin = job
    return _index.search_ids(request, SEARCH_DEPTH, exclude={origin})


def search_all(index: ExampleIndex, jobs: list[tuple[str, int]]) -> list[list[int]]:
    """`SEARCH_DEPTH` hits for each (request, id to exclude), on every core where there are many: the
    searches of a training set are what keeps an accelerator waiting before fine-tuning starts."""
    global _index
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _index = index
    try:
        if workers < 2 or len(jobs) < PARALLEL_FROM:
            return [_search(job) for job in jobs]
        with multiprocessing.get_context("fork").Pool(min(workers, 16)) as pool:
            return pool.map(_search, jobs, chunksize=256)
    finally:
        _index = None


def index_examples(pairs: list[Pair]) -> list[Example]:
    return [Example(p.instruction, p.command, p.source) for p in pairs]


def extend_index(model_path, pairs, val_pairs: list[Pair]) -> int:
    """Add `pairs` (a source the model was not trained on, such as the core tasks) to the example index
    beside `model_path`, leaving out any whose request or command is a validation pair's, so the lookup
    cannot answer a validation request from a copy of it. Returns how many were added."""
    banned = {p.command for p in val_pairs} | {p.instruction for p in val_pairs}
    path = examples_path(model_path)
    examples = load_examples(path) if path.is_file() else []
    known = {(e.request, e.command) for e in examples}
    added = [e for e in index_examples([p for p in pairs if p.command not in banned and p.instruction not in banned])
             if (e.request, e.command) not in known]
    save_examples(path, examples + added)
    return len(added)


def training_neighbours(index: ExampleIndex, examples: list[Pair], origins: list[int], k: int,
                        copy_rate: float = 0.15, adapted: bool = True, seed: int = 0) -> list[list[Example]]:
    """For each training example (its index id in `origins`), up to `k` neighbours, best first,
    `adapted` to its request as the engine adapts them (engine/adapt.py)."""
    by_command = defaultdict(list)
    for i, e in enumerate(index.examples):
        by_command[e.command].append(i)
    rng = random.Random(f"neighbours:{seed}")
    plans = []  # (how many, the twin copied first or None): every draw made before any search
    for origin in origins:
        count = 0 if rng.random() < NO_EXAMPLES_RATE else rng.randint(1, k)
        twins = [i for i in by_command[index.examples[origin].command] if i != origin] if count else []
        plans.append((count, rng.choice(twins) if twins and rng.random() < copy_rate else None))
    searched = iter(search_all(index, [(e.instruction, o) for e, o, (n, _) in zip(examples, origins, plans) if n]))
    out = []
    for example, origin, (count, twin) in zip(examples, origins, plans):
        if count == 0:
            out.append([])
            continue
        command = index.examples[origin].command
        others = [i for i in next(searched) if index.examples[i].command != command]
        chosen = others[:count] if twin is None else [twin] + others[:count - 1]
        chosen = [index.examples[i] for i in chosen]
        out.append(adapt_all(chosen, example.instruction) if adapted else chosen)
    return out
