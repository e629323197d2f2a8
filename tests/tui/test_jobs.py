"""tinyllm_tui.jobs: start, stop, resume and reattach to training jobs through their run directories."""
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tinyllm_tui import jobs

FAKE_TRAINER = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_runs_to_the_end_and_metrics_are_read(tinyllm_home):
    job = jobs.start("sft", ["cli-pairs", "jsonl:/x.jsonl"], "nano", 10, trainer=FAKE_TRAINER)
    job.wait(20)
    assert job.run_dir.parent == tinyllm_home / "data" / "runs" and job.run_dir.name.startswith("sft-")
    info = job.info()
    assert info["argv"] == [*FAKE_TRAINER, "sft", "--data", "cli-pairs", "--data", "jsonl:/x.jsonl", "--preset",
                            "nano", "--steps", "10", "--no-progress", "--run-dir", str(job.run_dir)]
    assert job.status() == "finished"
    assert job.metrics.last_step["step"] == 10 and len(job.metrics.train_curve) == 10
    assert job.metrics.val_curve == [(5, 0.9), (10, 0.45)]
    assert job.log_tail(2) == ["step 9 loss 0.444", "step 10 loss 0.400"]


def test_metrics_are_read_incrementally_and_torn_lines_wait(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = jobs.Metrics(path)
    assert metrics.poll() == 0  # no file yet
    path.write_text(json.dumps({"event": "step", "step": 1, "loss": 2.0}) + "\n" + '{"event": "st')
    assert metrics.poll() == 1 and metrics.train_curve == [(1, 2.0)]
    with open(path, "a") as f:
        f.write('ep", "step": 2, "loss": 1.5}\nnot json\n')
    assert metrics.poll() == 1 and metrics.train_curve == [(1, 2.0), (2, 1.5)]
    assert metrics.poll() == 0


def test_stop_then_resume_continues_where_it_stopped(tinyllm_home, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    job = jobs.start("sft", ["cli-pairs"], "nano", 400, trainer=FAKE_TRAINER)
    wait_until(lambda: job.metrics.poll() or job.metrics.last_step)
    assert job.status() == "running" and job.stop()
    job.wait(20)
    assert job.status() == "stopped"
    stopped_at, started = job.metrics.end["step"], job.info()["started"]
    monkeypatch.setenv("FAKE_STEP_S", "0.0")
    resumed = jobs.resume(job, trainer=FAKE_TRAINER)
    assert resumed.info()["argv"][-3:] == ["--run-dir", str(job.run_dir), "--resume"]
    assert resumed.info()["started"] == started  # the run keeps its place in the list
    resumed.wait(20)
    assert resumed.status() == "finished"
    resumed.metrics.poll()
    steps = [s for s, _ in resumed.metrics.train_curve]
    assert steps == list(range(1, 401)) and stopped_at < 400


def test_scan_reattaches_to_a_running_job_started_elsewhere(tinyllm_home, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    started = jobs.start("pretrain", ["text:/c.txt"], "nano", 400, trainer=FAKE_TRAINER)
    try:
        [found] = jobs.scan()
        assert found.process is None and found.name == started.run_dir.name  # only the run dir is known
        assert "--text" in found.info()["argv"]
        wait_until(lambda: found.metrics.poll() or found.metrics.last_step)
        assert found.status() == "running"
        assert found.stop()
        started.wait(20)  # reap it (we are its parent in this test)
        assert found.status() == "stopped"
    finally:
        if started.alive():
            started.process.kill()


def test_a_job_that_died_without_an_end_event_failed(tmp_path):
    run = tmp_path / "sft-1"
    run.mkdir()
    (run / "job.json").write_text(json.dumps({"phase": "sft", "argv": [], "pid": 2 ** 22 + 1, "status": "running"}))
    assert jobs.Job(run).status() == "failed"
    assert jobs.scan(tmp_path)[0].name == "sft-1"
    with pytest.raises(ValueError):
        jobs.resume(jobs.Job(run))


def test_resume_runs_the_trainer_program_not_the_recorded_argv0(tmp_path, monkeypatch):
    """The real trainer records its own sys.argv (.../cli.py train sft ...) in job.json."""
    run = tmp_path / "sft-2"
    run.mkdir()
    recorded = ["/somewhere/tinyllm_tui/cli.py", "train", "sft", "--steps", "3", "--run-dir", str(run)]
    info = {"phase": "sft", "argv": recorded, "pid": 2 ** 22 + 3, "status": "stopped"}
    (run / "job.json").write_text(json.dumps(info))
    spawned = []
    monkeypatch.setattr(jobs, "_spawn", lambda run_dir, argv, *rest: spawned.append(argv))
    jobs.resume(jobs.Job(run))
    assert spawned == [[*jobs.TRAINER, "sft", "--steps", "3", "--run-dir", str(run), "--resume"]]


def test_log_tail_shows_what_a_progress_bar_left(tmp_path):
    (tmp_path / "train.log").write_bytes(b"run: x\n 10%|#   | 1/10\r 20%|##  | 2/10\r\nlast line\n")
    assert jobs.Job(tmp_path).log_tail(3) == ["run: x", " 20%|##  | 2/10", "last line"]


@pytest.mark.skipif(os.environ.get("TINYLLM_TEST_TRAINER") != "real", reason="set TINYLLM_TEST_TRAINER=real")
def test_real_trainer_job(tinyllm_home, tiny_checkpoint, tmp_path):
    """The same flow against `tinyllm train sft` (about 10 s on a free CPU)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"instruction": f"print line {i} of notes.txt",
                                         "command": f"sed -n '{i}p' notes.txt"}) + "\n" for i in range(60)))
    extra = ["--init", str(tiny_checkpoint), "--batch-size", "4", "--eval-every", "3"]
    job = jobs.start("sft", [f"jsonl:{pairs}"], "nano", 6, extra)
    job.wait(240)
    assert job.status() == "finished", job.log_tail()
    assert [s for s, _ in job.metrics.train_curve] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in job.metrics.val_curve] == [3, 6] and "exact_match" in job.metrics.last_eval
    assert (job.run_dir / "checkpoint.tlm").is_file()
