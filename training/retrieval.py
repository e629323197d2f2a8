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
import random
from collections import defaultdict

from engine.adapt import adapt_all
from engine.examples import Example, ExampleIndex

from .data.records import Pair

SEARCH_DEPTH = 12  # hits looked at per example before the rules above filter them
NO_EXAMPLES_RATE = 0.05  # examples trained with an empty context: the model still answers without an index


def index_examples(pairs: list[Pair]) -> list[Example]:
    return [Example(p.instruction, p.command, p.source) for p in pairs]


def training_neighbours(index: ExampleIndex, examples: list[Pair], origins: list[int], k: int,
                        copy_rate: float = 0.15, adapted: bool = True, seed: int = 0) -> list[list[Example]]:
    """For each training example (its index id in `origins`), up to `k` neighbours, best first,
    `adapted` to its request as the engine adapts them (engine/adapt.py)."""
    by_command = defaultdict(list)
    for i, e in enumerate(index.examples):
        by_command[e.command].append(i)
    rng = random.Random(f"neighbours:{seed}")
    out = []
    for example, origin in zip(examples, origins):
        count = 0 if rng.random() < NO_EXAMPLES_RATE else rng.randint(1, k)
        if count == 0:
            out.append([])
            continue
        hits = index.search_ids(example.instruction, SEARCH_DEPTH, exclude={origin})
        command = index.examples[origin].command
        others = [i for i in hits if index.examples[i].command != command]
        twins = [i for i in by_command[command] if i != origin]
        chosen = others[:count]
        if twins and rng.random() < copy_rate:
            chosen = [rng.choice(twins)] + others[:count - 1]
        chosen = [index.examples[i] for i in chosen]
        out.append(adapt_all(chosen, example.instruction) if adapted else chosen)
    return out
