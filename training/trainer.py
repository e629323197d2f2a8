"""One trainer for pretraining and fine-tuning.

The phase only changes where batches come from (token shards or (request, command) pairs) and how
evaluation is scored; the loop is shared: AdamW, linear warmup then cosine decay, gradient
accumulation and clipping, bf16 autocast, optional torch.compile, checkpoints every N steps and on
SIGINT/SIGTERM, and `resume` that continues exactly (model, optimizer, schedule, data, RNG).
Under `torchrun` each process trains on its own slice of the data and gradients are averaged (DDP).
"""
import atexit
import io
import math
import os
import random
import resource
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist
from tqdm import tqdm

from engine.atomic import write_bytes_atomic
from engine.checkpoint import checkpoint_bytes
from engine.model import GPT
from engine.tokenizer import Tokenizer

from .config import TrainConfig
from .errors import TrainingError, writing
from .run_dir import RunDir


def progress_at(step: int, elapsed: float, config: TrainConfig) -> float:
    """How far through its budget a run is (1.0: done): steps, or seconds where a time budget ends first."""
    progress = step / max(1, config.steps)
    return max(progress, elapsed / config.seconds) if config.seconds else progress


def lr_at(step: int, config: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at the end of the budget (the last
    step, or the last second of a time budget: a run sized by time on an unknown machine still anneals)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    if config.seconds:
        progress = max(progress, min(1.0, elapsed / config.seconds))
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with decay on matrices only (not norms), fused where the build supports it."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        # Left to interpreter teardown, gloo's threads can abort the process ("terminate called
        # without an active exception") after training has finished.
        atexit.register(dist.destroy_process_group)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


@dataclass
class Evaluator:
    """How a phase scores the model: validation loss on held-out batches, and (SFT) exact match."""
    val_batches: list = field(default_factory=list)  # [(x, y)] numpy arrays
    val_pairs: list = field(default_factory=list)  # [Pair] for exact match
    index: object = None  # engine.examples.ExampleIndex the prompts retrieve from (None: plain prompts)
    retrieval: object = None  # engine.examples.RetrievalSettings


class Trainer:
    def __init__(self, run: RunDir, config: TrainConfig, model: GPT, tokenizer: Tokenizer, batches,
                 evaluator: Evaluator | None = None, meta: dict | None = None, extra_loss=None):
        self.run, self.config, self.tokenizer = run, config, tokenizer
        self.rank, self.world = distributed()
        self.device = torch.device(f"cuda:{self.rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device)
        self.batches, self.evaluator = batches, evaluator or Evaluator()
        self.meta = dict(meta or {})
        self.extra_loss = extra_loss  # callable(model) -> tensor added to the loss (weight anchoring)
        self.optimizer = make_optimizer(self.model, config)
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.last_eval: dict = {}
        self.stop_requested = False
        torch.manual_seed(config.seed + self.rank)
        random.seed(config.seed + self.rank)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self) -> None:
        """Write state.pt, then checkpoint.tlm, each atomically. Only rank 0 writes.

        state.pt holds the weights too, so it alone is what --resume reads: a kill between the two
        writes cannot pair one step's weights with another step's optimizer and data position.
        """
        if not self.is_main:
            return
        meta = {**self.meta, "phase": self.config.phase, "steps": self.step, "tokens": self.tokens,
                "train_seconds": round(self.elapsed, 1), "eval": self.last_eval}
        state = {"step": self.step, "tokens": self.tokens, "elapsed": self.elapsed,
                 "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "batches": self.batches.state(),
                 "torch_rng": torch.get_rng_state(), "python_rng": list(random.getstate()[1]),
                 "config": asdict(self.config), "last_eval": self.last_eval}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        # A full disk: the files before stay whole (atomic writes).
        for path, data in ((self.run.state, buffer.getvalue()),
                           (self.run.checkpoint, checkpoint_bytes(self.model, self.tokenizer, meta))):
            with writing(path, "; the previous checkpoint is kept"):
                write_bytes_atomic(path, data)
        self.run.event("checkpoint", step=self.step, path=str(self.run.checkpoint))

    def resume(self) -> None:
        """Continue from the run's state.pt (written by `save`)."""
        from engine.checkpoint import load_checkpoint

        if not self.run.state.is_file():
            raise TrainingError(f"{self.run.path}: nothing to resume (no state.pt)")
        try:
            state = torch.load(self.run.state, map_location="cpu", weights_only=True)
        except Exception:
            raise TrainingError(f"{self.run.state}: unreadable training state (corrupt or truncated)") from None
        # Runs saved before state.pt held the weights take them from checkpoint.tlm.
        weights = state.get("model") or load_checkpoint(self.run.checkpoint).model.state_dict()
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.load_state(state["batches"])
        self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
        self.last_eval = state.get("last_eval", {})
        torch.set_rng_state(state["torch_rng"])
        random.setstate((3, tuple(state["python_rng"]), None))
        for leftover in self.run.path.glob(".*.tmp"):  # a write a kill cut short
            leftover.unlink(missing_ok=True)

    # -- the loop --------------------------------------------------------------------------------
    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def _forward_loss(self, model, x, y):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            return model(x, y)

    def train(self) -> str:
        """Run to `config.steps` (or until stopped). Returns the end status: finished or stopped."""
        config = self.config
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        model = self.model
        if self.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(model)
        step_model = torch.compile(model, dynamic=True) if config.compile else model
        if self.is_main:
            self.run.start_job(config.phase, config.steps)
            self.run.event("start", phase=config.phase, total_steps=config.steps, start_step=self.step,
                           params=self.model.num_params(), world_size=self.world, preset=self.meta.get("preset"))
        bar = tqdm(total=config.steps, initial=self.step, disable=not (config.progress and self.is_main),
                   unit="step", dynamic_ncols=True)
        status = "finished"
        try:
            model.train()
            while not self._agreed(progress_at(self.step, self.elapsed, config) >= 1.0):
                if self._agreed(self.stop_requested):
                    status = "stopped"
                    break
                started = time.perf_counter()
                lr = lr_at(self.step, config, self.elapsed)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss_sum, step_tokens = 0.0, 0
                for micro in range(config.grad_accum):
                    x, y = (torch.from_numpy(a).to(self.device) for a in self.batches.next_batch())
                    # DDP all-reduces in backward; the gradients only need averaging once, on the last micro-step.
                    last = micro == config.grad_accum - 1
                    with model.no_sync() if self.world > 1 and not last else nullcontext():
                        loss = self._forward_loss(step_model, x, y) / config.grad_accum
                        if self.extra_loss is not None:
                            loss = loss + self.extra_loss(self.model) / config.grad_accum
                        loss.backward()
                    loss_sum += loss.item()
                    step_tokens += int((x != self.tokenizer.pad_id).sum()) if config.phase == "sft" else x.numel()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                seconds = time.perf_counter() - started
                self.elapsed += seconds
                self.tokens += step_tokens * self.world
                self._log_step(loss_sum, lr, step_tokens * self.world / seconds, bar)
                last = progress_at(self.step, self.elapsed, config) >= 1.0
                if self.step % config.eval_every == 0 or last:
                    self.evaluate()
                if self.step % config.checkpoint_every == 0 and not last:
                    self.save()
            self.save()
            if self.world > 1:
                self._record_rank_checksums()
        except BaseException as e:
            if self.is_main:
                try:
                    self.run.event("end", step=self.step, status="failed", message=f"{e.__class__.__name__}: {e}")
                    self.run.update_job(status="failed")
                except TrainingError:
                    pass  # a full disk: the error being raised says so
            raise
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if self.is_main:
            self.run.event("end", step=self.step, status=status, message="")
            self.run.update_job(status=status)
        self._leave_together()
        return status

    def _leave_together(self) -> None:
        """Ranks leave train() at once: one tearing gloo down while another still works aborts it."""
        if self.world > 1:
            dist.barrier()

    def _agreed(self, flag: bool) -> bool:
        """True on every rank when it is on any (a stop, a spent time budget): all ranks stop at the same
        step, or DDP would hang waiting for the one that left."""
        if self.world == 1:
            return flag
        flag = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _log_step(self, loss: float, lr: float, tok_s: float, bar) -> None:
        if not self.is_main:
            return
        per_step = self.elapsed / max(1, self.step)
        eta = per_step * (self.config.steps - self.step)
        if self.config.seconds:
            eta = min(eta, max(0.0, self.config.seconds - self.elapsed))
        self.run.event("step", step=self.step, total_steps=self.config.steps, loss=round(loss, 5),
                       lr=lr, tok_s=round(tok_s, 1), elapsed=round(self.elapsed, 2), eta=round(eta, 1),
                       peak_mem_mb=round(peak_memory_mb(), 1), tokens=self.tokens)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}", refresh=False)

    @torch.no_grad()
    def evaluate(self) -> dict:
        if not self.is_main:
            return {}
        self.model.eval()
        scores: dict = {}
        if self.evaluator.val_batches:
            losses = [self._forward_loss(self.model, torch.from_numpy(x).to(self.device),
                                         torch.from_numpy(y).to(self.device)).item()
                      for x, y in self.evaluator.val_batches]
            scores["val_loss"] = round(sum(losses) / len(losses), 5)
        if self.evaluator.val_pairs and self.device.type == "cpu":
            from engine.generate import Engine

            from .evaluate import evaluate

            result = evaluate(Engine(self.model, self.tokenizer, index=self.evaluator.index,
                                     retrieval=self.evaluator.retrieval), self.evaluator.val_pairs, n=1)
            scores.update(exact_match=round(result.exact_match, 4), nlc2cmd=round(result.nlc2cmd, 4),
                          n=result.n)
        self.model.train()
        self.last_eval = scores
        self.run.event("eval", step=self.step, **scores)
        return scores

    def _record_rank_checksums(self) -> None:
        """Every rank's weight checksum in the end event: DDP ranks must end identical."""
        checksum = torch.tensor([sum(float(p.double().sum()) for p in self.model.parameters())], dtype=torch.float64)
        gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
        dist.all_gather(gathered, checksum)
        if self.is_main:
            self.run.event("ranks", step=self.step, checksums=[float(g.item()) for g in gathered])
