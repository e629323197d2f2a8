"""Scoring a model on held-out pairs: batched beam search, then exact match, top-N exact match and NLC2CMD.

Used by `tinyllm eval`, by the trainer's periodic eval and by the continual-learning gate. Requests are
decoded in batches sorted by prompt length (less left-padding per batch); results come back in input order.
"""
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import write_text_atomic
from engine.checks import check_candidates
from engine.generate import Candidate, Engine
from training.data.jsonl import read_jsonl
from training.data.records import Pair
from training.errors import TrainingError
from training.metrics import exact_match, nlc2cmd_score, same_first_utility, top_n_exact_match

__all__ = ["EvalResult", "evaluate", "predict", "checks_effect", "load_eval_pairs", "second_references", "write_predictions", "exact_match",
           "nlc2cmd_score", "top_n_exact_match"]

# 600 nl2bash requests, 5M-param model, 1 thread: batch 1 ~140 s, 16 ~59 s, 32 ~51 s, 64 ~90 s (64 pays
# for beam search copying the whole KV cache every step, and each batch runs until its longest output).
DEFAULT_BATCH_SIZE = 32


@dataclass
class EvalResult:
    exact_match: float  # share of examples whose best prediction is the reference
    top_n_exact_match: float  # share where any of the top-N predictions is
    nlc2cmd: float  # mean NLC2CMD score of the best of the top-N, in [-1, 1]
    n: int  # examples scored
    nlc2cmd_top1: float = 0.0  # mean NLC2CMD score of the first prediction alone
    first_utility: float = 0.0  # share whose first prediction starts with the reference's utility
    predictions: list[list[str]] = field(default_factory=list)  # best first, in input order
    top_n: int = 1
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"exact_match": round(self.exact_match, 4), "top_n_exact_match": round(self.top_n_exact_match, 4),
                "nlc2cmd": round(self.nlc2cmd, 4), "nlc2cmd_top1": round(self.nlc2cmd_top1, 4),
                "first_utility": round(self.first_utility, 4), "n": self.n}


def as_pair(example) -> Pair:
    if isinstance(example, Pair):
        return example
    if pair := Pair.from_dict(example, "eval"):
        return pair
    raise TrainingError("an eval example needs 'instruction' and 'command'")


def predict(engine: Engine, requests: list[str], n: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
            progress: bool = False, width: int | None = None) -> list[list[str]]:
    """The top-n commands for each request, in input order."""
    from tqdm import tqdm

    if batch_size < 1:
        raise TrainingError("batch size must be at least 1")
    order = sorted(range(len(requests)), key=lambda i: len(engine.tokenizer.encode(requests[i])))
    predictions: list[list[str]] = [[] for _ in requests]
    with tqdm(total=len(requests), unit="ex", file=sys.stderr, disable=not progress, dynamic_ncols=True,
              desc="eval") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            results = engine.suggest_batch([requests[i] for i in batch], n=n, width=width)
            for i, candidates in zip(batch, results):
                predictions[i] = [c.command for c in candidates]
            bar.update(len(batch))
    return predictions


def evaluate(engine: Engine, pairs, n: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
             progress: bool = False, width: int | None = None, lookup: bool = False,
             second: dict[str, str] | None = None) -> EvalResult:
    """Score `engine` on `pairs` (Pair objects or dicts with 'instruction' and 'command').
    `width` is the beam width (default n; 1 with n=1 is greedy decoding). `lookup` scores the
    engine's example index alone (its best examples' commands), the baseline a model must beat.
    `second`: a second correct command per request (`command2` of the everyday set, where two ways are
    common); a prediction scores as well as it does against the better of the two."""
    pairs = [as_pair(p) for p in pairs]
    second = second or {}
    if not pairs:
        raise TrainingError("no examples to evaluate")
    started = time.perf_counter()
    if lookup:
        if engine.index is None:
            raise TrainingError(f"{engine.name}: this model has no example index to look up")
        predictions = [engine.lookup(p.instruction, n) for p in pairs]
    else:
        predictions = predict(engine, [p.instruction for p in pairs], n, batch_size, progress, width)
    seconds = time.perf_counter() - started
    count = len(pairs)
    references = [[p.command] + ([second[p.instruction]] if second.get(p.instruction) else []) for p in pairs]

    def mean(score) -> float:
        return sum(max(score(preds, ref) for ref in refs) for refs, preds in zip(references, predictions)) / count

    return EvalResult(
        exact_match=mean(lambda preds, ref: top_n_exact_match(preds[:1], ref)),
        top_n_exact_match=mean(top_n_exact_match),
        nlc2cmd=mean(nlc2cmd_score),
        nlc2cmd_top1=mean(lambda preds, ref: nlc2cmd_score(preds[:1], ref)),
        first_utility=mean(lambda preds, ref: same_first_utility(preds[:1], ref)),
        n=count, predictions=predictions, top_n=n, seconds=seconds,
    )


def second_references(path) -> dict[str, str]:
    """{request: command2} of a JSON Lines eval file whose lines give a second correct command."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("command2"), str) and isinstance(item.get("instruction"), str):
            out[item["instruction"].strip()] = item["command2"].strip()
    return out


def checks_effect(engine: Engine, pairs, predictions: list[list[str]]) -> dict:
    """What the candidate checks (engine/checks.py) do to unchecked predictions (best first): how many
    candidates they drop, how many requests they leave with none, and top-1 exact match before and
    after they drop and re-rank. Measured on the same candidates, without the spares a checked
    suggestion draws from the beam."""
    pairs = [as_pair(p) for p in pairs]
    known = engine.known_utilities()
    checked = [[c.command for c in check_candidates([Candidate(command, -rank) for rank, command in enumerate(preds)],
                                                    known, pair.instruction)] for pair, preds in zip(pairs, predictions)]
    count = max(1, len(pairs))
    return {"candidates": sum(map(len, predictions)),
            "dropped": sum(map(len, predictions)) - sum(map(len, checked)),
            "requests_left_empty": sum(1 for preds, kept in zip(predictions, checked) if preds and not kept),
            "top1_changed": sum(1 for preds, kept in zip(predictions, checked) if preds[:1] != kept[:1]),
            "exact_match_before": round(sum(top_n_exact_match(p[:1], x.command) for x, p in zip(pairs, predictions)) / count, 4),
            "exact_match_after": round(sum(top_n_exact_match(p[:1], x.command) for x, p in zip(pairs, checked)) / count, 4)}


def load_eval_pairs(path, limit: int | None = None) -> tuple[list[Pair], int]:
    """The pairs of a JSON Lines file (first `limit` of them) and how many malformed lines were skipped."""
    skipped: Counter = Counter()
    pairs = list(read_jsonl(path, skipped))
    if not pairs:
        raise TrainingError(f"{path}: no examples (empty file)")
    return (pairs[:limit] if limit else pairs), sum(skipped.values())


def write_predictions(path, pairs: list[Pair], predictions: list[list[str]]) -> None:
    lines = [json.dumps({**p.to_dict(), "predictions": preds},
                        ensure_ascii=False) for p, preds in zip(pairs, predictions)]
    write_text_atomic(Path(path), "".join(line + "\n" for line in lines), mode=0o644)
