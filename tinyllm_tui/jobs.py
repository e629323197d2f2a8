"""Training jobs as child processes that outlive the app, and their run directories read back.

A job is `tinyllm train <phase> ... --run-dir DIR` started in its own session (so closing or crashing
the app does not kill it) with its output in DIR/train.log. Everything the app knows about a job comes
from DIR (job.json, metrics.jsonl, train.log; described in training/run_dir.py), so a reopened app
reattaches to running jobs by scanning engine.paths.runs_dir(). No textual here: the panel polls this.
"""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import paths
from engine.atomic import write_text_atomic

# The real trainer. Tests pass a fake script that takes the same arguments and writes the same files.
TRAINER = [sys.executable, "-m", "tinyllm_tui.cli", "train"]
LOG_TAIL_BYTES = 8192


@dataclass
class Metrics:
    """What metrics.jsonl has said so far, read incrementally (only the bytes appended since last time)."""

    path: Path
    offset: int = 0
    start: dict = field(default_factory=dict)
    last_step: dict = field(default_factory=dict)
    last_eval: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)

    def poll(self) -> int:
        """Read new complete lines; returns how many events were read. A half-written last line waits."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        count = 0
        for line in chunk[:complete].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn or foreign line must not stop the dashboard
            if isinstance(event, dict):
                self._take(event)
                count += 1
        return count

    def _take(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.start = event
        elif kind == "step":
            self.last_step = event
            if isinstance(event.get("loss"), (int, float)):
                self.train_curve.append((event.get("step", 0), float(event["loss"])))
        elif kind == "eval":
            self.last_eval = event
            if isinstance(event.get("val_loss"), (int, float)):
                self.val_curve.append((event.get("step", 0), float(event["val_loss"])))
        elif kind == "end":
            self.end = event


class Job:
    """One run directory, and its process when it is alive."""

    def __init__(self, run_dir: Path, process: subprocess.Popen | None = None):
        self.run_dir = Path(run_dir)
        self.process = process  # set only for jobs this app started (so it can reap them)
        self.metrics = Metrics(self.run_dir / "metrics.jsonl")

    @property
    def name(self) -> str:
        return self.run_dir.name

    def info(self) -> dict:
        try:
            value = json.loads((self.run_dir / "job.json").read_text())
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        pid = self.info().get("pid")
        return pid if isinstance(pid, int) else None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        pid = self.pid
        return pid is not None and _pid_runs(pid, self.run_dir)

    def status(self) -> str:
        """running | stopped | finished | failed; a job that died without an end event failed."""
        if self.alive():
            return "running"
        self.metrics.poll()
        if self.metrics.end.get("status"):
            return self.metrics.end["status"]
        status = self.info().get("status", "failed")
        return "failed" if status == "running" else status

    def stop(self) -> bool:
        """SIGTERM: the trainer saves a checkpoint, writes its end event and exits."""
        pid = self.pid
        if pid is None or not self.alive():
            return False
        os.kill(pid, signal.SIGTERM)
        return True

    def wait(self, timeout: float | None = None) -> None:
        if self.process is not None:
            self.process.wait(timeout)

    def log_tail(self, lines: int = 8) -> list[str]:
        try:
            with open(self.run_dir / "train.log", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        # A progress bar redraws its line with \r: keep what the last redraw left on screen.
        return [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n") if line.strip()][-lines:]


def start(phase: str, data: list[str], preset: str, steps: int, extra: list[str] = (),
          run_dir: Path | None = None, trainer: list[str] | None = None) -> Job:
    """Start `tinyllm train <phase>` in a fresh run directory; returns at once.

    `extra` are more trainer flags as the user typed them (--init CKPT, --batch-size 8, ...).
    """
    if run_dir is None:
        run_dir = _new_run_dir(phase)
    data_flag = "--data" if phase == "sft" else "--text"
    argv = [*(trainer or TRAINER), phase]
    for spec in data:
        argv += [data_flag, spec]
    # --no-progress: a progress bar redrawn with carriage returns is noise in train.log.
    argv += ["--preset", preset, "--steps", str(steps), *extra, "--no-progress", "--run-dir", str(run_dir)]
    return _spawn(Path(run_dir), argv, phase, steps)


def resume(job: Job, trainer: list[str] | None = None) -> Job:
    """Start a stopped job again from its run directory (`--resume` continues where it stopped)."""
    if job.alive():
        return job
    info = job.info()
    argv = list(info.get("argv") or [])
    if not argv or info.get("phase") not in argv:
        raise ValueError(f"{job.name}: job.json has no command line to resume with")
    # The trainer records its own sys.argv (.../cli.py train sft ...), which is not runnable as it is:
    # keep the arguments from the phase on and put the trainer program in front.
    argv = [*(trainer or TRAINER), *argv[argv.index(info["phase"]):]]
    if "--resume" not in argv:
        argv.append("--resume")
    return _spawn(job.run_dir, argv, info.get("phase", "sft"), info.get("total_steps"))


def _spawn(run_dir: Path, argv: list[str], phase: str, total_steps) -> Job:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(run_dir / "train.log", "ab") as log:
        # Own session: a ctrl+c or crash in the app does not reach the job.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    # The trainer rewrites job.json as it goes; this version lets a reopened app find the job at once.
    info = Job(run_dir).info()
    info.update({"phase": phase, "argv": argv, "pid": process.pid, "status": "running", "total_steps": total_steps})
    info.setdefault("started", time.time())
    write_text_atomic(run_dir / "job.json", json.dumps(info))
    return Job(run_dir, process)


def scan(root: Path | None = None) -> list[Job]:
    """Every run directory, oldest first (names carry their start time)."""
    root = Path(root) if root else paths.runs_dir()
    if not root.is_dir():
        return []
    runs = [d for d in root.iterdir() if d.is_dir() and ((d / "job.json").exists() or (d / "metrics.jsonl").exists())]
    return [Job(d) for d in sorted(runs, key=lambda d: (_started(d) or d.stat().st_mtime, d.name))]


def _new_run_dir(phase: str) -> Path:
    root = paths.runs_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = root / f"{phase}-{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = root / f"{phase}-{stamp}-{n}"
    return candidate


def _started(run_dir: Path) -> float:
    try:
        return float(json.loads((run_dir / "job.json").read_text()).get("started", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def _pid_runs(pid: int, run_dir: Path) -> bool:
    """Is `pid` alive and still our job? (After a reboot the number may belong to someone else.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            text = cmdline.read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False  # exited, waiting to be reaped by its parent
        return str(run_dir).encode() in text
    return True
