"""The trainer: loss masking, the schedule, exact resume after SIGTERM, and 2-process data parallel."""
import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.model import GPT, IGNORE_INDEX, preset
from tests.conftest import PAIRS
from training.batches import PairBatches
from training.data.records import Pair
from training.run_dir import RunDir
from training.config import TrainConfig
from training.trainer import Trainer, lr_at

PAIR_RECORDS = [Pair(r, c, "test") for r, c in PAIRS]


def test_batches_put_loss_on_command_tokens_only(tiny_tokenizer):
    batches = PairBatches(tiny_tokenizer, PAIR_RECORDS, batch_size=4, context=128)
    x, y = batches.next_batch()
    for row in range(len(x)):
        command_pos = list(x[row]).index(tiny_tokenizer.command_id)
        # Targets before the <command> token (the instruction) are ignored; from there on they are
        # the command and the final <eos>.
        assert (y[row, :command_pos] == IGNORE_INDEX).all()
        scored = y[row][y[row] != IGNORE_INDEX]
        assert scored[-1] == tiny_tokenizer.eos_id
        request, command = next((r, c) for r, c in PAIRS if tiny_tokenizer.encode_prompt(r) == list(x[row, :command_pos + 1]))
        assert tiny_tokenizer.decode(scored[:-1]) == command


def test_instruction_tokens_contribute_nothing_to_the_loss(tiny_tokenizer):
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=tiny_tokenizer.vocab_size, context=128))
    x, y = (torch.from_numpy(a) for a in PairBatches(tiny_tokenizer, PAIR_RECORDS, batch_size=4, context=128).next_batch())
    logits = model(x)
    command_only = y != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[command_only], y[command_only])
    assert torch.allclose(model(x, y), expected, atol=1e-5)
    # Scoring the instruction too would give a different number: the mask is doing something.
    everything = torch.where(command_only, y, torch.roll(x, -1, 1))
    assert not torch.allclose(model(x, everything), expected, atol=1e-3)


def test_batches_resume_to_the_same_order(tiny_tokenizer):
    a = PairBatches(tiny_tokenizer, PAIR_RECORDS, batch_size=2, context=128, seed=3)
    seen = [a.next_batch() for _ in range(7)]  # crosses an epoch boundary
    b = PairBatches(tiny_tokenizer, PAIR_RECORDS, batch_size=2, context=128, seed=3)
    b.load_state({"epoch": 0, "index": 3})
    for expected in seen[3:]:
        got = b.next_batch()
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, lr=1e-3, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(1e-4)
    assert lr_at(9, config) == pytest.approx(1e-3)
    assert lr_at(100, config) == pytest.approx(1e-4)
    assert lr_at(50, config) < lr_at(20, config)


def test_a_time_budget_anneals_by_the_clock_when_it_ends_before_the_steps():
    config = TrainConfig(steps=1000, lr=1e-3, warmup=10, min_lr_ratio=0.1, seconds=60)
    assert lr_at(20, config, elapsed=0.0) == pytest.approx(lr_at(20, TrainConfig(steps=1000, lr=1e-3, warmup=10)))
    assert lr_at(20, config, elapsed=30.0) == pytest.approx(0.55e-3)  # half the time: half the cosine
    assert lr_at(20, config, elapsed=90.0) == pytest.approx(1e-4)  # spent: the floor


def test_a_run_with_a_time_budget_finishes_when_the_time_is_spent(tiny_tokenizer, tmp_path, monkeypatch):
    trainer = _trainer(tmp_path / "timed", tiny_tokenizer, steps=10_000)
    trainer.config.seconds = 5.0
    clock = iter(range(0, 10_000, 2))  # each step seems to take two seconds
    monkeypatch.setattr("training.trainer.time.perf_counter", lambda: next(clock))
    assert trainer.train() == "finished"
    assert trainer.step == 3  # 2 s, 4 s, 6 s: the step that crossed 5 s was the last
    assert load_checkpoint(trainer.run.checkpoint).meta["steps"] == 3


def _trainer(run_dir, tokenizer, steps=6):
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=tokenizer.vocab_size, context=128))
    config = TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, eval_every=1000, checkpoint_every=1000,
                         bf16=False, progress=False)
    batches = PairBatches(tokenizer, PAIR_RECORDS, batch_size=4, context=128, seed=1)
    return Trainer(RunDir(run_dir), config, model, tokenizer, batches)


class _StopsAtStep3(Trainer):
    def _log_step(self, *args):
        super()._log_step(*args)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the real signal path


def test_resume_after_sigterm_equals_an_uninterrupted_run(tiny_tokenizer, tmp_path):
    straight = _trainer(tmp_path / "a", tiny_tokenizer)
    assert straight.train() == "finished"

    stopped = _trainer(tmp_path / "b", tiny_tokenizer)
    stopped.__class__ = _StopsAtStep3
    assert stopped.train() == "stopped" and stopped.step == 3
    events = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "stopped"

    resumed = _trainer(tmp_path / "b", tiny_tokenizer)
    resumed.resume()
    assert resumed.step == 3
    assert resumed.train() == "finished"
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert load_checkpoint(tmp_path / "b" / "checkpoint.tlm").meta["steps"] == 6


def test_resume_of_a_corrupt_state_is_a_clear_error(tiny_tokenizer, tmp_path):
    from training.errors import TrainingError

    trainer = _trainer(tmp_path / "c", tiny_tokenizer, steps=2)
    trainer.train()
    (tmp_path / "c" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="state.pt"):
        _trainer(tmp_path / "c", tiny_tokenizer).resume()


class _RecordingDDP(torch.nn.Module):
    """Stands in for DistributedDataParallel: records, per forward, whether gradient sync was off."""

    def __init__(self, module):
        super().__init__()
        self.module, self.syncing, self.forwards = module, True, []

    def forward(self, *args):
        self.forwards.append(self.syncing)
        return self.module(*args)

    @contextmanager
    def no_sync(self):
        self.syncing = False
        try:
            yield
        finally:
            self.syncing = True


def test_gradient_accumulation_syncs_only_on_the_last_micro_step(tiny_tokenizer, tmp_path, monkeypatch):
    wrappers = []
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda m: wrappers.append(_RecordingDDP(m)) or wrappers[-1])
    trainer = _trainer(tmp_path / "ddp", tiny_tokenizer, steps=2)
    trainer.config.grad_accum = 3
    trainer.world = 2  # as under torchrun, without a process group
    monkeypatch.setattr(trainer, "_agreed", lambda flag: flag)
    monkeypatch.setattr(trainer, "_record_rank_checksums", lambda: None)
    monkeypatch.setattr(trainer, "_leave_together", lambda: None)
    trainer.train()
    assert wrappers[0].forwards == [False, False, True] * 2


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun not installed")
def test_two_processes_end_with_identical_weights(tiny_tokenizer, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"{r} number {i}", "command": f"{c} # {i}"}) + "\n"
                            for i in range(8) for r, c in PAIRS))
    tokenizer_file = tmp_path / "tok.model"
    tokenizer_file.write_bytes(tiny_tokenizer.model_proto)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "tinyllm_tui.cli", "train", "sft",
         "--data", f"jsonl:{data}", "--tokenizer", str(tokenizer_file), "--preset", "nano", "--context", "128",
         "--steps", "4", "--batch-size", "4", "--grad-accum", "2", "--eval-every", "1000", "--augment", "0", "--no-progress",
         "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert next(e for e in events if e["event"] == "start")["world_size"] == 2
    checksums = next(e for e in events if e["event"] == "ranks")["checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert events[-1]["status"] == "finished"
