"""The sandbox keeps commands away from the host (files, processes, devices, time), and the exec judge.

The namespace tests need Linux, root and util-linux unshare; elsewhere they skip, saying why."""
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from training.errors import TrainingError
from training.exec_judge import judge, reference
from training.sandbox import Sandbox, unavailable

BED = "printf 'a\\nb\\nc\\n' > f\nprintf 'old\\n' > old.log\nprintf 'new\\n' > new.log\n"
namespaces = pytest.mark.skipif(unavailable() is not None, reason=f"no sandbox here: {unavailable()}")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    setup = tmp_path_factory.mktemp("bed") / "setup.sh"
    setup.write_text(BED)
    with Sandbox(setup, timeout=5.0) as box:
        yield box


@pytest.fixture
def canary_dir():
    """A folder the sandbox sees through its overlay of / (its /tmp is private, so not under /tmp)."""
    path = Path(tempfile.mkdtemp(prefix="tinyllm-canary-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@namespaces
def test_a_deleted_host_file_is_deleted_only_inside(sandbox, canary_dir):
    canary = canary_dir / "canary.txt"
    canary.write_text("keep me\n")
    run = sandbox.run(f"rm -v {canary} && ls {canary_dir}")
    assert run.exit_code == 0 and "removed" in run.stdout  # the sandbox saw the file and deleted it
    assert canary.read_text() == "keep me\n"


@pytest.mark.slow
@namespaces
def test_a_host_process_cannot_be_killed(sandbox):
    canary = subprocess.Popen(["sleep", "60"])
    try:
        sandbox.run(f"kill -9 {canary.pid}; pkill -9 sleep; killall -9 sleep")
        time.sleep(0.1)
        assert canary.poll() is None
    finally:
        canary.kill()
        canary.wait()


@pytest.mark.slow
@namespaces
def test_device_paths_reach_no_host_device(sandbox):
    # A name no host has: were the sandbox's /dev the host's, the write would leave a file there (harmless).
    device = Path("/dev/tinyllm-canary-disk")
    assert not device.exists()
    run = sandbox.run(f"echo x > {device} && cat {device}; find /dev -type b; ls /dev")
    assert run.stdout.startswith("x\n")  # written inside, to the sandbox's own /dev
    assert not device.exists()
    names = set(run.stdout.split()[1:])
    assert names <= {"fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero",
                     device.name}  # no block devices, no disks


@pytest.mark.slow
@namespaces
def test_an_endless_loop_is_stopped_and_reported(sandbox):
    started = time.perf_counter()
    run = sandbox.run("echo start; while :; do :; done", timeout=1.0)
    assert run.timed_out and run.exit_code == 137 and run.stdout == "start\n"
    assert time.perf_counter() - started < 10


@pytest.mark.slow
@namespaces
def test_runs_start_from_the_same_bed_and_report_effects(sandbox):
    changed = sandbox.run("rm old.log; echo hi > made.txt; chmod 600 f")
    assert "old.log" not in changed.effect and changed.effect["made.txt"][0] == "file"
    assert changed.effect["f"][1] == 0o600
    assert sandbox.run("true").effect == sandbox.bed  # the last run's changes are gone


@pytest.mark.slow
@namespaces
def test_equal_effects_with_other_flags_are_right(sandbox):
    assert judge("rm -f old.log", [reference("rm old.log", sandbox)], sandbox)
    assert judge("cat f | wc -l", [reference("wc -l < f", sandbox)], sandbox)


@pytest.mark.slow
@namespaces
def test_a_different_effect_or_output_is_wrong(sandbox):
    assert not judge("rm *.log", [reference("rm old.log", sandbox)], sandbox)  # deletes new.log too
    assert not judge("wc -l f", [reference("wc -l < f", sandbox)], sandbox)  # prints the name too
    assert not judge("cat f missing", [reference("cat f", sandbox)], sandbox)  # same stdout, but fails
    assert judge("rm *.log", [reference("rm old.log", sandbox), reference("rm -f *.log", sandbox)], sandbox)


@pytest.mark.slow
@namespaces
def test_a_reference_that_varies_is_judged_by_its_text(sandbox):
    nanoseconds = reference("date +%N", sandbox)
    assert nanoseconds.run is None and nanoseconds.by_text == "differs between runs"
    assert judge("date  +%N", [nanoseconds], sandbox)
    assert not judge("date +%N | cat", [nanoseconds], sandbox)
    assert reference("systemctl restart nginx", sandbox).by_text in ("fails in the sandbox", "differs between runs")
    assert reference("cd", sandbox).by_text == "shows and changes nothing"


def test_outside_root_the_error_is_one_line(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(TrainingError) as error:
        Sandbox()
    assert "root" in str(error.value) and "\n" not in str(error.value)


def test_eval_exec_outside_root_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    from tinyllm_tui.cli import main

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    data = tmp_path / "eval.jsonl"
    data.write_text('{"instruction": "list files", "command": "ls"}\n')
    assert main(["eval", "--data", str(data), "--exec"]) == 2
    error = capsys.readouterr().err
    assert "needs root" in error and error.count("\n") == 1


@pytest.mark.slow
@namespaces
def test_eval_exec_prints_exec_scores_beside_string_scores(tiny_checkpoint, tinyllm_home, tmp_path):
    from tests.tui.test_cli import tinyllm

    data = tmp_path / "eval.jsonl"
    data.write_text('{"instruction": "count lines in notes.txt", "command": "wc -l notes.txt"}\n'
                    '{"instruction": "print working directory", "command": "echo nothing", "command2": "echo /root"}\n')
    setup = tmp_path / "setup.sh"
    setup.write_text("printf 'a\\nb\\n' > notes.txt\n")
    result = tinyllm("eval", "--data", str(data), "--model", str(tiny_checkpoint), "--exec", "--testbed", str(setup),
                     "--json", home=tinyllm_home)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    # The nano model says `pwd` for the second: no text matches, but it prints what command2 prints.
    assert (scores["exact_match"], scores["exec_top1"], scores["exec_top_n"]) == (0.5, 1.0, 1.0)
    assert scores["exec_references"] == 3 and scores["exec_references_by_text"] == 0


@pytest.mark.slow
@namespaces
def test_what_a_command_leaves_running_may_finish_within_the_time(sandbox):
    run = sandbox.run("(sleep 0.3; echo late > late.txt) & echo now")
    assert run.stdout == "now\n" and not run.timed_out and run.effect["late.txt"][0] == "file"
