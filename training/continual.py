"""Gated continual updates: learn the accepted corrections without forgetting, or change nothing.

    corrections (accepted, not learned) + replay buffer -> a few anchored fine-tuning steps from the
    active model -> the gate scores both models, greedy, on the new examples and the base eval set
    -> accepted: a new model version, activated; corrections marked learned. Rejected: only the log.

Every decision is recorded in the feedback store (the Review panel shows them). One update at a time:
a lock file in the data dir serialises writers, and the queue and active model are read under it, so a
second update that waited sees what the first one learned.

The loop is a short one of its own built from the trainer's pieces (optimizer, schedule, batches)
rather than `Trainer` itself: the trainer installs signal handlers (main thread only, so an app worker
thread could not run it) and writes a run directory the Train panel would list as a training job.
"""
import fcntl
import logging
import random
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from engine import paths
from engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, stored_dtype
from engine.companions import copy_companions
from engine.feedback import Correction, FeedbackStore, UpdateRecord
from engine.generate import Engine
from engine.model import GPT
from engine.store import ModelStore
from engine.tokenizer import Tokenizer

from .anchoring import L2SP
from .batches import PairBatches
from .config import TrainConfig, UpdateConfig
from .data.augment import request_variants
from .data.records import Pair
from .errors import TrainingError
from .evaluate import evaluate, exact_match
from .trainer import lr_at, make_optimizer

log = logging.getLogger("tinyllm.training.continual")

LOCK_NAME = "update.lock"
VARIANTS_PER_CORRECTION = 4  # the request as written plus light rewrites (case, final period)
MAX_BATCH = 32  # a mix larger than this is fed in shuffled batches instead of all at once


@dataclass
class Scores:
    exact_match: float
    nlc2cmd: float
    n: int


# -- the pieces -----------------------------------------------------------------------------------

def _key(request: str) -> str:
    return " ".join(request.lower().split()).rstrip(".")


def correction_pairs(corrections: list[Correction]) -> list[Pair]:
    """The new examples the gate scores: each request with its corrected command."""
    return [Pair(c.request, c.corrected, "feedback") for c in corrections]


def training_examples(corrections: list[Correction]) -> list[Pair]:
    """Each correction as written plus a few light rewrites, so the fix holds for how people retype it."""
    examples = []
    for pair in correction_pairs(corrections):
        examples += [Pair(request, pair.command, "feedback")
                     for request in request_variants(pair)[:VARIANTS_PER_CORRECTION]]
    return examples


def _pairs(pairs: list[Pair], superseded: set[str]) -> list[Pair]:
    """`pairs` deduplicated, without requests a correction overrides (replaying or scoring the old answer
    would fight the user's fix)."""
    seen, kept = set(), []
    for pair in pairs:
        if _key(pair.instruction) in superseded or (pair.instruction, pair.command) in seen:
            continue
        seen.add((pair.instruction, pair.command))
        kept.append(pair)
    return kept


def _stored_pairs(meta: dict, key: str) -> list[Pair]:
    """A pair sample a checkpoint carries in its metadata (`train_pairs_sample`, `base_eval_set`)."""
    return [pair for item in meta.get(key) or [] if (pair := Pair.from_dict(item, key))]


def replay_buffer(meta: dict, learned: list[Correction], superseded: set[str]) -> list[Pair]:
    """Everything replay may draw from: the model's base training sample and corrections learned before."""
    return _pairs(_stored_pairs(meta, "train_pairs_sample") + correction_pairs(learned), superseded)


def training_mix(corrections: list[Correction], buffer: list[Pair], config: UpdateConfig) -> list[Pair]:
    """The correction examples plus `replay` buffer pairs per correction, drawn with the seed."""
    count = min(len(buffer), config.replay * len(corrections))
    return training_examples(corrections) + random.Random(config.seed).sample(buffer, count)


@contextmanager
def deterministic(seed: int):
    """Seeded RNGs and deterministic kernels for the block; the caller's RNG state comes back after."""
    previous = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)


def fine_tune(model: GPT, tokenizer: Tokenizer, pairs: list[Pair], config: UpdateConfig) -> None:
    """A few anchored AdamW steps on `pairs`, in place, on the CPU, fp32 (bf16 would break exactness)."""
    schedule = TrainConfig(phase="sft", steps=config.steps, lr=config.lr, warmup=max(1, config.steps // 10),
                           weight_decay=0.0, bf16=False, progress=False, seed=config.seed)
    context = model.config.context
    fitting = [p for p in pairs if len(tokenizer.encode_pair(p.instruction, p.command)[0]) <= context]
    if not fitting:
        raise TrainingError("the corrections are too long for the model's context")
    batches = PairBatches(tokenizer, fitting, batch_size=min(MAX_BATCH, len(fitting)), context=context,
                          seed=config.seed)
    anchor = L2SP(model, config.anchor) if config.anchor > 0 else None
    with deterministic(config.seed):
        optimizer = make_optimizer(model, schedule)
        model.train()
        for step in range(config.steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, schedule)
            x, y = (torch.from_numpy(a) for a in batches.next_batch())
            loss = model(x, y)
            if anchor is not None:
                loss = loss + anchor(model)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()


def score(model: GPT, tokenizer: Tokenizer, pairs: list[Pair]) -> Scores:
    """Greedy decoding (n=1), so the same weights always give the same score."""
    result = evaluate(Engine(model, tokenizer), pairs, n=1)
    return Scores(round(result.exact_match, 6), round(result.nlc2cmd, 6), result.n)


def already_answered(model: GPT, tokenizer: Tokenizer, corrections: list[Correction]) -> list[Correction]:
    """The corrections whose corrected command is already the model's greedy answer."""
    predictions = evaluate(Engine(model, tokenizer), correction_pairs(corrections), n=1).predictions
    return [c for c, best in zip(corrections, predictions) if best and exact_match(best[0], c.corrected)]


def _as_stored(model: GPT, dtype: torch.dtype) -> None:
    """Round the weights to the dtype the file will hold, so the gate scores exactly what is saved."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())


@contextmanager
def update_lock():
    """One update at a time across processes: an exclusive flock on a file in the data dir."""
    with open(paths.data_dir() / LOCK_NAME, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another update is running; waiting for it to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- the update -----------------------------------------------------------------------------------

def run_update(config: UpdateConfig | None = None, dry_run: bool = False, feedback: FeedbackStore | None = None,
               store: ModelStore | None = None) -> UpdateRecord:
    """Train on the queue, gate, and (unless `dry_run`) record the decision and publish an accepted model.
    Returns the record (as stored, unless `dry_run`).

    A failure is recorded as decision "error" and raised again (TrainingError/EngineError: exit 2)."""
    config = config or UpdateConfig()
    config.check()
    feedback = feedback or FeedbackStore()
    store = store or ModelStore()
    if dry_run:
        return _attempt(config, feedback, store, dry_run=True)
    with update_lock():
        try:
            record = _attempt(config, feedback, store, dry_run=False)
        except Exception as e:
            feedback.record_update(UpdateRecord("error", parent_version=store.active_version(),
                                                delta_threshold=config.delta, epsilon=config.epsilon,
                                                message=f"{e.__class__.__name__}: {e}"))
            raise
        return feedback.record_update(record)


def _attempt(config: UpdateConfig, feedback: FeedbackStore, store: ModelStore, dry_run: bool) -> UpdateRecord:
    corrections = feedback.accepted_unlearned()
    parent_path = store.active_path()
    record = UpdateRecord("nothing-to-learn", [c.id for c in corrections], store.active_version(),
                          delta_threshold=config.delta, epsilon=config.epsilon)
    if not corrections:
        record.message = "no accepted corrections to learn"
        return record

    checkpoint = load_checkpoint(parent_path)
    model, tokenizer, meta = checkpoint.model, checkpoint.tokenizer, checkpoint.meta
    # A correction the model already answers cannot raise the new-examples score, so it would block
    # every update it is part of: it is learned as it stands.
    known = already_answered(model, tokenizer, corrections)
    if known and not dry_run:
        feedback.mark_learned([c.id for c in known], record.parent_version)
    corrections = [c for c in corrections if c not in known]
    record.correction_ids = [c.id for c in corrections]
    if not corrections:
        record.message = "the model already answers every accepted correction (marked learned)"
        return record
    superseded = {_key(c.request) for c in corrections}
    buffer = replay_buffer(meta, feedback.learned(), superseded)
    new_pairs = correction_pairs(corrections)
    base_pairs, base_set = _pairs(_stored_pairs(meta, "base_eval_set"), superseded), "base_eval_set"
    notes = []
    if not base_pairs:
        base_pairs, base_set = buffer, "replay"
        notes.append("the model has no base eval set; the gate scores the replay pairs instead")
        log.warning(notes[-1])
    if not base_pairs:
        raise TrainingError("nothing to check forgetting against: the model has no base eval set or replay pairs")

    before = score(model, tokenizer, new_pairs), score(model, tokenizer, base_pairs)
    fine_tune(model, tokenizer, training_mix(corrections, buffer, config), config)
    dtype = stored_dtype(parent_path)
    if dtype is not None:
        _as_stored(model, dtype)
    after = score(model, tokenizer, new_pairs), score(model, tokenizer, base_pairs)
    record.new_before, record.base_before = (s.exact_match for s in before)
    record.new_after, record.base_after = (s.exact_match for s in after)

    passed = record.new_delta >= config.delta and record.base_delta >= -config.epsilon
    record.decision = "accepted" if passed else "rejected"
    notes.append(_explain(record, f"{base_set}: {len(base_pairs)} pairs"))
    record.message = "; ".join(notes)
    if passed and not dry_run:
        scores = {"new_before": asdict(before[0]), "base_before": asdict(before[1]),
                  "new_after": asdict(after[0]), "base_after": asdict(after[1]), "base_set": base_set}
        record.new_version = _publish(store, model, checkpoint, new_pairs, record, scores, config, dtype)
        feedback.mark_learned(record.correction_ids, record.new_version)
    return record


def _explain(record: UpdateRecord, base_set: str) -> str:
    return (f"new {record.new_before:.3f} -> {record.new_after:.3f} "
            f"(delta {record.new_delta:+.3f}, needs >= {record.delta_threshold:+.3f}), "
            f"base[{base_set}] {record.base_before:.3f} -> {record.base_after:.3f} "
            f"(delta {record.base_delta:+.3f}, needs >= {-record.epsilon:+.3f})")


def _publish(store: ModelStore, model: GPT, parent: Checkpoint, new_pairs: list[Pair], record: UpdateRecord,
             scores: dict, config: UpdateConfig, dtype: torch.dtype | None) -> int:
    """Save the updated model as the next version and activate it (the daemon follows the pointer). It
    keeps its parent's tokenizer, reviewer and example index."""
    parent_meta, parent_path = parent.meta, parent.path
    if store.active_version() != record.parent_version:
        raise TrainingError("the active model changed while the update ran; run the update again")
    if record.parent_version is None:
        # The bundled model cannot be activated by number: keep a copy so `models activate` rolls back.
        record.parent_version = store.add(parent_path)
    sample = list(parent_meta.get("train_pairs_sample") or [])
    sample += [pair.to_dict() for pair in new_pairs]
    meta = {k: v for k, v in parent_meta.items() if k not in ("created", "eval")}
    meta.update(
        parent={"version": record.parent_version, "path": str(parent_path)},
        train_pairs_sample=sample,
        base_eval_set=parent_meta.get("base_eval_set") or [],
        continual={
            "time": time.time(), "corrections": record.correction_ids, **scores,
            "new_delta": record.new_delta, "base_delta": record.base_delta,
            "thresholds": {"delta": config.delta, "epsilon": config.epsilon},
            "config": asdict(config),
        },
    )
    with tempfile.TemporaryDirectory(dir=paths.data_dir(), prefix=".update-") as tmp:
        path = save_checkpoint(Path(tmp) / "model.tlm", model, parent.tokenizer, meta, dtype=dtype, reviewer=parent.reviewer)
        copy_companions(parent_path, path)
        return store.add(path, activate=True)
