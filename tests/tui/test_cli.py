"""The `tinyllm` CLI end to end, in a subprocess as a user runs it."""
import json
import os
import subprocess
import sys


def tinyllm(*args, home, stdin=None):
    env = {**os.environ, "TINYLLM_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "tinyllm_tui.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def test_suggest_json(tiny_checkpoint, tinyllm_home):
    result = tinyllm("suggest", "show disk usage", "-n", "2", "--model", str(tiny_checkpoint), "--json", home=tinyllm_home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["candidates"][0]["command"] == "df -h"
    assert set(out) == {"candidates", "latency_ms", "model", "examples"} and out["latency_ms"] > 0
    assert out["candidates"][0]["source"] == "model" and out["examples"] == []  # this model reads no examples


def test_suggest_uses_the_active_model(tiny_checkpoint, tinyllm_home):
    assert tinyllm("models", "add", str(tiny_checkpoint), "--activate", home=tinyllm_home).stdout.strip() == "1"
    result = tinyllm("suggest", "list files", "-n", "1", home=tinyllm_home)
    assert result.stdout.strip() == "ls -la"
    listing = json.loads(tinyllm("models", "list", "--json", home=tinyllm_home).stdout)
    assert listing[0]["version"] == 1 and listing[0]["active"]


def test_models_add_stores_a_reviewer_with_the_version(tiny_checkpoint, tinyllm_home, tmp_path):
    from engine.generate import Engine
    from engine.store import ModelStore

    added = tinyllm("models", "add", str(tiny_checkpoint), "--reviewer", str(tiny_checkpoint), home=tinyllm_home)
    assert added.returncode == 0 and added.stdout.strip() == "1", added.stderr
    assert Engine.from_checkpoint(ModelStore(tinyllm_home / "data" / "models").path(1)).reviews()
    (tmp_path / "junk.tlm").write_bytes(b"nope")
    refused = tinyllm("models", "add", str(tiny_checkpoint), "--reviewer", str(tmp_path / "junk.tlm"), home=tinyllm_home)
    assert refused.returncode == 2 and "junk.tlm: not a tinyllm checkpoint" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_user_mistakes_are_one_line_errors(tiny_checkpoint, tinyllm_home, tmp_path):
    empty = tinyllm("suggest", "  ", "--model", str(tiny_checkpoint), home=tinyllm_home)
    assert empty.returncode == 2 and empty.stderr.strip() == "tinyllm: empty request: describe what the command should do"
    bad = tmp_path / "bad.tlm"
    bad.write_bytes(b"nope")
    corrupt = tinyllm("suggest", "list files", "--model", str(bad), home=tinyllm_home)
    assert corrupt.returncode == 2 and str(bad) in corrupt.stderr and "Traceback" not in corrupt.stderr
    rollback = tinyllm("models", "rollback", home=tinyllm_home)
    assert rollback.returncode == 2 and "Traceback" not in rollback.stderr


def test_a_closed_pipe_ends_quietly(tinyllm_home):
    """`tinyllm ... | head`: the reader leaves early; no traceback."""
    env = {**os.environ, "TINYLLM_HOME": str(tinyllm_home)}
    process = subprocess.Popen([sys.executable, "-m", "tinyllm_tui.cli", "shell-init", "zsh"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert process.wait(60) == 141
    assert process.stderr.read() == b""


def test_suggest_answers_from_a_running_daemon(tiny_checkpoint):
    """With a warm daemon, `tinyllm suggest` asks it instead of importing torch and loading a model."""
    from tests.shell.daemon import make_home, remove_home, start_daemon

    home = make_home(tiny_checkpoint)
    try:
        daemon = start_daemon(home)
        code = ("import sys; from tinyllm_tui.cli import main; rc = main(['suggest', 'list files', '--json']);"
                "sys.stderr.write('torch loaded' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "TINYLLM_HOME": str(home)})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["candidates"][0]["command"] == "ls -la"
        assert result.stderr.endswith("no torch")
        daemon.terminate()
        daemon.wait(timeout=10)
    finally:
        remove_home(home)


def test_train_flags_default_to_the_train_config():
    from tinyllm_tui.cli import build_parser
    from tinyllm_tui.commands.train import _config
    from training.config import TrainConfig

    for phase, data in (("sft", []), ("pretrain", ["--text", "man"])):
        assert _config(build_parser().parse_args(["train", phase, *data]), phase) == TrainConfig(phase=phase)
    args = build_parser().parse_args(["train", "sft", "--grad-accum", "4", "--no-bf16", "--compile", "--min-lr-ratio", "0"])
    assert _config(args, "sft") == TrainConfig(grad_accum=4, bf16=False, compile=True, min_lr_ratio=0.0)


def test_bench_fuzz_runs_the_fuzzer_with_its_options(tiny_checkpoint, tinyllm_home):
    result = tinyllm("bench", "fuzz", "--model", str(tiny_checkpoint), "--requests", "20", "--clients", "2",
                     "--stallers", "0", "--seed", "1", "--json", home=tinyllm_home)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["requests"], figures["clients"], figures["stallers"]) == (20, 2, 0)
    assert figures["outcomes"]["normal_ok"] == 2 and figures["daemon_alive"]


def test_bench_faults_passes_its_options_through(monkeypatch, capsys):
    from tinyllm_tui.cli import main
    from training import faults

    calls = []

    def fake_run(plan, steps, every, seed):
        calls.append((len(plan), steps, every, seed))
        return {"weights_identical": identical, "wrong_resume_steps": 0, "unloadable_after_kill": 0}

    monkeypatch.setattr(faults, "run", fake_run)
    identical = True
    assert main(["bench", "faults", "--kills", "3", "--steps", "6", "--every", "2", "--seed", "4", "--json"]) == 0
    assert calls == [(3, 6, 2, 4)] and json.loads(capsys.readouterr().out)["weights_identical"] is True
    identical = False
    assert main(["bench", "faults", "--kills", "1"]) == 1  # different weights: the bench failed
    assert "weights_identical: False" in capsys.readouterr().out
