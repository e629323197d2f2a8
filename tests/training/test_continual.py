"""Gated continual updates on the nano test model (it has memorised conftest.PAIRS)."""
import threading

import pytest
import torch

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.feedback import FeedbackStore
from engine.generate import Engine
from engine.store import ModelStore
from tests.conftest import PAIRS
from training.continual import UpdateConfig, run_update

# Anchoring off, a learning rate 50x the default and no replay: the model forgets its base pairs.
FORGETFUL = UpdateConfig(anchor=0.0, lr=0.05, replay=0)


@pytest.fixture
def store(tiny_checkpoint) -> ModelStore:
    store = ModelStore()
    store.add(tiny_checkpoint, activate=True)
    return store


def accepted(request: str, command: str, feedback: FeedbackStore | None = None) -> int:
    feedback = feedback or FeedbackStore()
    id = feedback.add_correction(request, "ls", command, "cli")
    feedback.accept(id)
    return id


def test_accepted_update_teaches_the_correction(store):
    id = accepted("show hidden files", "ls -a")
    result = run_update()

    assert result.decision == "accepted"
    assert (result.new_before, result.new_after) == (0.0, 1.0)
    assert result.base_delta >= -0.02 and result.new_version == 2
    assert store.active_version() == 2
    engine = Engine.from_checkpoint(store.active_path())
    assert engine.suggest("show hidden files", n=1)[0].command == "ls -a"

    feedback = FeedbackStore()
    assert feedback.get(id).status == "learned" and feedback.get(id).learned_version == 2
    [record] = feedback.updates()
    assert (record.decision, record.new_version, record.parent_version, record.correction_ids) == ("accepted", 2, 1, [id])
    assert record == result  # what run_update returns is what the store keeps

    meta = load_checkpoint(store.active_path()).meta
    base = [{"instruction": r, "command": c} for r, c in PAIRS]
    assert meta["parent"]["version"] == 1 and meta["continual"]["corrections"] == [id]
    assert meta["base_eval_set"] == base
    assert meta["train_pairs_sample"] == base + [{"instruction": "show hidden files", "command": "ls -a"}]


def test_forgetting_update_is_rejected_and_changes_nothing(store):
    id = accepted("show hidden files", "ls -a")
    before = store.active_path().read_bytes()
    result = run_update(FORGETFUL)

    assert result.decision == "rejected" and result.new_version is None
    assert result.base_delta < -FORGETFUL.epsilon
    assert store.active_version() == 1 and store.versions() == [1]
    assert store.active_path().read_bytes() == before
    feedback = FeedbackStore()
    assert feedback.get(id).status == "accepted"
    [record] = feedback.updates()
    assert (record.decision, record.new_version, record.base_delta) == ("rejected", None, result.base_delta)


def test_gate_decides_the_same_twice_and_dry_run_records_nothing(store):
    accepted("show hidden files", "ls -a")
    accepted("delete the build folder", "rm -rf build")
    config = UpdateConfig(steps=20)
    first, second = run_update(config, dry_run=True), run_update(config, dry_run=True)

    assert first == second and first.new_after is not None
    assert FeedbackStore().updates() == [] and store.versions() == [1]
    assert [c.status for c in FeedbackStore().corrections()] == ["accepted", "accepted"]


def test_nothing_to_learn_is_recorded(store):
    result = run_update()
    assert (result.decision, result.new_delta, result.base_delta, result.new_version, result.correction_ids) == (
        "nothing-to-learn", None, None, None, [])
    assert [r.decision for r in FeedbackStore().updates()] == ["nothing-to-learn"]
    assert store.versions() == [1]


def test_a_correction_the_model_already_answers_is_learned_without_an_update(store):
    # The tiny model says "ls -la" for "list files"; the user's command equals it (a different suggestion
    # was shown, e.g. by an older model).
    known = accepted("list files", "ls -la")
    result = run_update()
    assert result.decision == "nothing-to-learn" and "already answers" in result.message
    assert FeedbackStore().get(known).status == "learned"
    assert store.versions() == [1]


def test_model_without_base_eval_set_is_gated_on_replay_pairs(tiny_checkpoint, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    meta = {k: v for k, v in checkpoint.meta.items() if k != "base_eval_set"}
    path = save_checkpoint(tmp_path / "no-eval.tlm", checkpoint.model, checkpoint.tokenizer, meta)
    ModelStore().add(path, activate=True)
    accepted("show hidden files", "ls -a")

    result = run_update(UpdateConfig(steps=1), dry_run=True)
    assert f"base[replay: {len(PAIRS)} pairs]" in result.message
    assert "no base eval set" in result.message


def test_correction_overrides_the_base_pair_it_contradicts(store):
    accepted("List files.", "ls -lh")  # the base set says "list files" -> "ls -la"
    result = run_update(UpdateConfig(steps=1), dry_run=True)
    assert f"base[base_eval_set: {len(PAIRS) - 1} pairs]" in result.message


def test_concurrent_updates_create_one_version(store):
    id = accepted("show hidden files", "ls -a")
    results = []
    threads = [threading.Thread(target=lambda: results.append(run_update())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The second waited on the lock, then found the queue already learned.
    assert sorted(r.decision for r in results) == ["accepted", "nothing-to-learn"]
    assert store.versions() == [1, 2] and store.active_version() == 2
    assert FeedbackStore().get(id).learned_version == 2
    assert sorted(r.decision for r in FeedbackStore().updates()) == ["accepted", "nothing-to-learn"]


def test_update_from_the_bundled_model_keeps_it_for_rollback(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("engine.store.BUNDLED_MODEL", tiny_checkpoint)
    accepted("show hidden files", "ls -a")
    result = run_update(UpdateConfig(steps=30))

    store = ModelStore()
    assert result.decision == "accepted" and (result.parent_version, result.new_version) == (1, 2)
    assert store.path(1).read_bytes() == tiny_checkpoint.read_bytes() and store.active_version() == 2
    assert store.previous_version() == 1


def test_an_update_reads_the_same_examples_and_reviewer_as_its_parent(tiny_checkpoint, tmp_path):
    from engine.examples import Example, examples_path
    from tests.conftest import model_copy

    parent = model_copy(tiny_checkpoint, tmp_path, [Example("list files", "ls", "test")], reviewer=True)
    store = ModelStore()
    store.add(parent, activate=True)
    accepted("show hidden files", "ls -a")
    assert run_update().decision == "accepted" and store.active_version() == 2
    assert examples_path(store.path(2)).read_bytes() == examples_path(parent).read_bytes()
    updated, before = load_checkpoint(store.path(2)).reviewer, load_checkpoint(parent).reviewer
    assert all(torch.equal(a, b) for a, b in zip(updated.state_dict().values(), before.state_dict().values()))
