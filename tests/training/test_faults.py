"""Training under faults: kill -9 inside checkpoint writes, then resume; a full disk while writing."""
import functools
import os
import subprocess

import numpy as np
import pytest
import torch

from engine.checkpoint import load_checkpoint
from tests.training.test_trainer import _trainer
from training import faults
from training.errors import TrainingError
from training.shards import ShardWriter


def test_kills_inside_checkpoint_writes_resume_to_the_uninterrupted_weights():
    result = faults.run(["mid-write", "before-rename"], steps=12, every=2, seed=3)
    assert result["kills"] == 2 and result["restarts"] == 2
    assert result["unloadable_after_kill"] == 0 and result["wrong_resume_steps"] == 0
    assert result["weights_identical"]


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs (needs root to mount); skipped with the reason where it cannot be made."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk case is not tested")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk, leave: int = 0) -> None:
    """Fill the disk, then free `leave` bytes (room for small writes such as metrics, not for a checkpoint)."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    os.truncate(disk / "filler", (disk / "filler").stat().st_size - leave)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_tokenizer, small_disk):
    trainer = _trainer(small_disk / "run", tiny_tokenizer, steps=2)
    trainer.train()
    before = load_checkpoint(small_disk / "run" / "checkpoint.tlm").model.state_dict()
    fill(small_disk, leave=256 * 1024)
    trainer.config.steps = 4
    with pytest.raises(TrainingError) as error:
        trainer.train()
    message = str(error.value)
    assert "\n" not in message and "No space left on device" in message and str(small_disk / "run" / "state.pt") in message
    after = load_checkpoint(small_disk / "run" / "checkpoint.tlm").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.load(small_disk / "run" / "state.pt", weights_only=True)["step"] == 2
    assert not list((small_disk / "run").glob(".*.tmp"))
    (small_disk / "filler").unlink()
    resumed = _trainer(small_disk / "run", tiny_tokenizer, steps=4)
    resumed.resume()
    assert resumed.step == 2 and resumed.train() == "finished"


def test_a_full_disk_during_a_shard_write_is_one_line(small_disk):
    fill(small_disk)
    with pytest.raises(TrainingError) as error:
        with ShardWriter(small_disk / "shards", shard_tokens=1000) as writer:
            writer.write(list(range(5000)))
    assert "\n" not in str(error.value) and "No space left on device" in str(error.value)
    assert not list((small_disk / "shards").glob("*"))


def test_shards_cut_short_are_written_again_on_resume(tiny_tokenizer, tmp_path, monkeypatch):
    from training import pipeline
    from training.pipeline import write_text_shards
    from training.run_dir import RunDir

    monkeypatch.setattr(pipeline, "ShardWriter", functools.partial(ShardWriter, shard_tokens=50))  # many shards

    run = RunDir(tmp_path / "run")
    docs = [f"document number {i} about files" for i in range(120)]

    def dies_half_way():
        yield from docs[:60]
        raise KeyboardInterrupt  # the job killed while writing its shards

    with pytest.raises(KeyboardInterrupt):
        write_text_shards(run, tiny_tokenizer, dies_half_way())
    assert not (run.path / "shards").exists()
    train, val = write_text_shards(run, tiny_tokenizer, iter(docs))
    tokens = sum(len(np.load(p)) for p in train + val)
    assert tokens == sum(len(tiny_tokenizer.encode(d)) + 2 for d in docs)
