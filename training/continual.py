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
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine import paths
from engine.checkpoint import load_checkpoint, read_payload, save_checkpoint
from engine.examples import examples_path
from engine.feedback import Correction, FeedbackStore
from engine.generate import Engine
from engine.model import GPT
from engine.store import ModelStore
from engine.tokenizer import Tokenizer

from .anchoring import L2SP
from .batches import PairBatches
from .config import TrainConfig
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
class UpdateConfig:
    """Defaults measured on the nano test model (tests/conftest.py) with 1, 3 and 8 corrections and a run
    of 6 updates in a row: 60 steps learn 7 of 8 corrections where 40 learn half, lr 1e-4 learns nothing;
    replay 0 / 2 drops the base set to 0.3 / 0.9; the 6 updates in a row were all accepted with anchor 0.03
    and replay 16, where anchor 0.01 or replay 8 each lost a base pair once (rejected); anchor 1.0 stops
    the learning."""
    steps: int = 60
    lr: float = 1e-3
    anchor: float = 0.03  # L2-SP strength; 0 = off
    replay: int = 16  # replay pairs mixed in per correction
    seed: int = 0
    delta: float = 0.01  # the new-examples score must rise by at least this
    epsilon: float = 0.02  # the base score may fall by at most this

    def check(self) -> None:
        if self.steps < 1:
            raise TrainingError("--steps must be at least 1")
        if not self.lr > 0:
            raise TrainingError("--lr must be positive")
        if self.anchor < 0 or self.replay < 0 or self.epsilon < 0:
            raise TrainingError("--anchor, --replay and --epsilon must not be negative")


@dataclass
class Scores:
    exact_match: float
    nlc2cmd: float
    n: int


@dataclass
class UpdateResult:
    decision: str  # accepted | rejected | nothing-to-learn
    correction_ids: list[int] = field(default_factory=list)
    parent_version: int | None = None
    parent_path: str = ""
    version: int | None = None
    new_before: Scores | None = None
    new_after: Scores | None = None
    base_before: Scores | None = None
    base_after: Scores | None = None
    base_set: str = ""  # "base_eval_set" or "replay" (the model carried no eval set)
    message: str = ""

    @property
    def new_delta(self) -> float | None:
        return _delta(self.new_before, self.new_after)

    @property
    def base_delta(self) -> float | None:
        return _delta(self.base_before, self.base_after)

    def to_json(self) -> dict:
        return {"decision": self.decision, "new_delta": self.new_delta, "base_delta": self.base_delta,
                "version": self.version, "corrections": self.correction_ids}


def _delta(before: Scores | None, after: Scores | None) -> float | None:
    # Rounded so the gate compares k/n fractions, not float noise (0.3 - 0.2 != 0.1).
    return None if before is None or after is None else round(after.exact_match - before.exact_match, 6)


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


def _pairs(items, superseded: set[str]) -> list[Pair]:
    """{"instruction","command"} dicts as Pairs, deduplicated, without requests a correction overrides
    (replaying or scoring the old answer would fight the user's fix)."""
    seen, pairs = set(), []
    for item in items or []:
        try:
            pair = Pair(str(item["instruction"]), str(item["command"]), "replay")
        except (KeyError, TypeError):
            continue
        if _key(pair.instruction) in superseded or (pair.instruction, pair.command) in seen:
            continue
        seen.add((pair.instruction, pair.command))
        pairs.append(pair)
    return pairs


def replay_buffer(meta: dict, learned: list[Correction], superseded: set[str]) -> list[Pair]:
    """Everything replay may draw from: the model's base training sample and corrections learned before."""
    items = list(meta.get("train_pairs_sample") or [])
    items += [{"instruction": c.request, "command": c.corrected} for c in learned]
    return _pairs(items, superseded)


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


def _stored_dtype(path: Path) -> torch.dtype | None:
    state = read_payload(path)["state_dict"]
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 and torch.float32 not in dtypes else None


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
               store: ModelStore | None = None) -> UpdateResult:
    """Train on the queue, gate, and (unless `dry_run`) record the decision and publish an accepted model.

    A failure is recorded as decision "error" and raised again (TrainingError/EngineError: exit 2)."""
    config = config or UpdateConfig()
    config.check()
    feedback = feedback or FeedbackStore()
    store = store or ModelStore()
    if dry_run:
        return _attempt(config, feedback, store, dry_run=True)
    with update_lock():
        try:
            result = _attempt(config, feedback, store, dry_run=False)
        except Exception as e:
            feedback.record_update(decision="error", delta_threshold=config.delta, epsilon=config.epsilon,
                                   parent_version=store.active_version(), message=f"{e.__class__.__name__}: {e}")
            raise
        _record(feedback, result, config)
        return result


def _attempt(config: UpdateConfig, feedback: FeedbackStore, store: ModelStore, dry_run: bool) -> UpdateResult:
    corrections = feedback.accepted_unlearned()
    parent_version = store.active_version()
    parent_path = store.active_path()
    result = UpdateResult("nothing-to-learn", [c.id for c in corrections], parent_version, str(parent_path))
    if not corrections:
        result.message = "no accepted corrections to learn"
        return result

    checkpoint = load_checkpoint(parent_path)
    model, tokenizer, meta = checkpoint.model, checkpoint.tokenizer, checkpoint.meta
    # A correction the model already answers cannot raise the new-examples score, so it would block
    # every update it is part of: it is learned as it stands.
    known = already_answered(model, tokenizer, corrections)
    if known and not dry_run:
        feedback.mark_learned([c.id for c in known], parent_version)
    corrections = [c for c in corrections if c not in known]
    result.correction_ids = [c.id for c in corrections]
    if not corrections:
        result.message = "the model already answers every accepted correction (marked learned)"
        return result
    superseded = {_key(c.request) for c in corrections}
    buffer = replay_buffer(meta, feedback.learned(), superseded)
    new_pairs = correction_pairs(corrections)
    base_pairs, result.base_set = _pairs(meta.get("base_eval_set"), superseded), "base_eval_set"
    notes = []
    if not base_pairs:
        base_pairs, result.base_set = buffer, "replay"
        notes.append("the model has no base eval set; the gate scores the replay pairs instead")
        log.warning(notes[-1])
    if not base_pairs:
        raise TrainingError("nothing to check forgetting against: the model has no base eval set or replay pairs")

    result.new_before, result.base_before = score(model, tokenizer, new_pairs), score(model, tokenizer, base_pairs)
    fine_tune(model, tokenizer, training_mix(corrections, buffer, config), config)
    dtype = _stored_dtype(parent_path)
    if dtype is not None:
        _as_stored(model, dtype)
    result.new_after, result.base_after = score(model, tokenizer, new_pairs), score(model, tokenizer, base_pairs)

    passed = result.new_delta >= config.delta and result.base_delta >= -config.epsilon
    result.decision = "accepted" if passed else "rejected"
    notes.append(_explain(result, config))
    result.message = "; ".join(notes)
    if passed and not dry_run:
        result.version = _publish(store, model, tokenizer, meta, new_pairs, result, config, dtype)
        feedback.mark_learned(result.correction_ids, result.version)
    return result


def _explain(result: UpdateResult, config: UpdateConfig) -> str:
    parts = [f"new {result.new_before.exact_match:.3f} -> {result.new_after.exact_match:.3f} "
             f"(delta {result.new_delta:+.3f}, needs >= {config.delta:+.3f})",
             f"base[{result.base_set}] {result.base_before.exact_match:.3f} -> {result.base_after.exact_match:.3f} "
             f"(delta {result.base_delta:+.3f}, needs >= {-config.epsilon:+.3f})"]
    return ", ".join(parts)


def _publish(store: ModelStore, model: GPT, tokenizer: Tokenizer, parent_meta: dict, new_pairs: list[Pair],
             result: UpdateResult, config: UpdateConfig, dtype: torch.dtype | None) -> int:
    """Save the updated model as the next version and activate it (the daemon follows the pointer)."""
    if store.active_version() != result.parent_version:
        raise TrainingError("the active model changed while the update ran; run the update again")
    if result.parent_version is None:
        # The bundled model cannot be activated by number: keep a copy so `models activate` rolls back.
        result.parent_version = store.add(result.parent_path)
    sample = list(parent_meta.get("train_pairs_sample") or [])
    sample += [{"instruction": p.instruction, "command": p.command} for p in new_pairs]
    meta = {k: v for k, v in parent_meta.items() if k not in ("created", "eval")}
    meta.update(
        parent={"version": result.parent_version, "path": result.parent_path},
        train_pairs_sample=sample,
        base_eval_set=parent_meta.get("base_eval_set") or [],
        continual={
            "time": time.time(), "corrections": result.correction_ids,
            "new_before": asdict(result.new_before), "new_after": asdict(result.new_after),
            "base_before": asdict(result.base_before), "base_after": asdict(result.base_after),
            "new_delta": result.new_delta, "base_delta": result.base_delta, "base_set": result.base_set,
            "thresholds": {"delta": config.delta, "epsilon": config.epsilon},
            "config": asdict(config),
        },
    )
    with tempfile.TemporaryDirectory(dir=paths.data_dir(), prefix=".update-") as tmp:
        path = save_checkpoint(Path(tmp) / "model.tlm", model, tokenizer, meta, dtype=dtype)
        if examples_path(result.parent_path).is_file():  # the new version reads the same examples
            shutil.copyfile(examples_path(result.parent_path), examples_path(path))
        return store.add(path, activate=True)


def _record(feedback: FeedbackStore, result: UpdateResult, config: UpdateConfig) -> None:
    scores = {}
    if result.new_after is not None:
        scores = dict(new_before=result.new_before.exact_match, new_after=result.new_after.exact_match,
                      base_before=result.base_before.exact_match, base_after=result.base_after.exact_match)
    feedback.record_update(decision=result.decision, new_delta=result.new_delta, base_delta=result.base_delta,
                           delta_threshold=config.delta, epsilon=config.epsilon,
                           parent_version=result.parent_version, new_version=result.version,
                           correction_ids=result.correction_ids, message=result.message, **scores)
