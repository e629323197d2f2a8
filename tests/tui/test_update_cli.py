"""`tinyllm update`: JSON output, exit codes, dry runs and two processes updating at once."""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.feedback import FeedbackStore
from engine.store import ModelStore
from tinyllm_tui import cli
from tinyllm_tui.commands import update
from tinyllm_tui.commands.common import config_from_args
from training.config import UpdateConfig

KEYS = {"decision", "new_delta", "base_delta", "version", "corrections"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tinyllm(tiny_checkpoint, monkeypatch, capsys):
    """`tinyllm update ...` in-process, with the tiny model active; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "COMMANDS", ["update"])
    monkeypatch.setattr(update, "setup_torch", lambda: None)  # keep the one thread conftest set
    ModelStore().add(tiny_checkpoint, activate=True)

    def run(*argv):
        code = cli.main(["update", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def accept(request: str, command: str) -> int:
    feedback = FeedbackStore()
    id = feedback.add_correction(request, "ls", command, "cli")
    feedback.accept(id)
    return id


def test_accepted_prints_json_and_exits_0(tinyllm):
    id = accept("show hidden files", "ls -a")
    code, out, _ = tinyllm("--json")
    result = json.loads(out)
    assert code == 0 and set(result) == KEYS
    assert (result["decision"], result["version"], result["corrections"]) == ("accepted", 2, [id])
    assert result["new_delta"] == 1.0 and result["base_delta"] >= -0.02
    assert ModelStore().active_version() == 2


def test_rejected_exits_1_and_keeps_the_model(tinyllm):
    id = accept("show hidden files", "ls -a")
    code, out, _ = tinyllm("--json", "--anchor", "0", "--lr", "0.05", "--replay", "0")
    result = json.loads(out)
    assert code == 1 and result["decision"] == "rejected" and result["version"] is None
    assert result["corrections"] == [id] and result["base_delta"] < -0.02
    assert ModelStore().versions() == [1]

    code, out, _ = tinyllm("--anchor", "0", "--lr", "0.05", "--replay", "0")
    assert code == 1 and out.startswith("rejected: the model is unchanged") and "base[base_eval_set: 10 pairs]" in out


def test_dry_run_changes_nothing(tinyllm):
    accept("show hidden files", "ls -a")
    code, out, _ = tinyllm("--dry-run", "--steps", "30")
    assert code == 0 and out.startswith("dry run: would be accepted")
    assert ModelStore().versions() == [1] and FeedbackStore().updates() == []
    assert [c.status for c in FeedbackStore().corrections()] == ["accepted"]


def test_nothing_to_learn_exits_0(tinyllm):
    code, out, _ = tinyllm("--json")
    assert code == 0 and json.loads(out) == {"decision": "nothing-to-learn", "new_delta": None,
                                             "base_delta": None, "version": None, "corrections": []}
    assert tinyllm()[1].startswith("nothing to learn")


def test_bad_option_exits_2(tinyllm):
    accept("show hidden files", "ls -a")
    code, out, err = tinyllm("--steps", "0")
    assert (code, out) == (2, "") and err == "tinyllm: --steps must be at least 1\n"


def test_flags_default_to_the_update_config():
    subparsers = argparse.ArgumentParser().add_subparsers()
    update.register(subparsers)
    parser = subparsers.choices["update"]
    assert config_from_args(UpdateConfig, parser.parse_args([])) == UpdateConfig()
    args = parser.parse_args(["--steps", "5", "--lr", "0.5", "--delta", "0.1", "--seed", "3"])
    assert config_from_args(UpdateConfig, args) == UpdateConfig(steps=5, lr=0.5, delta=0.1, seed=3)


def test_two_processes_at_once_make_one_version(tinyllm, tinyllm_home):
    id = accept("show hidden files", "ls -a")
    # One thread each (setup_torch keeps OMP's count): two processes share two cores.
    env = {**os.environ, "TINYLLM_HOME": str(tinyllm_home), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tinyllm_tui.cli", "update", "--json", "--steps", "30"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), json.loads(p.stdout.read())) for p in processes]
    for p in processes:
        p.stdout.close()

    assert sorted((code, r["decision"], r["version"]) for code, r in results) == [
        (0, "accepted", 2), (0, "nothing-to-learn", None)]
    store = ModelStore()
    assert store.versions() == [1, 2] and store.active_version() == 2
    assert FeedbackStore().get(id).learned_version == 2
    assert sorted(r.decision for r in FeedbackStore().updates()) == ["accepted", "nothing-to-learn"]
