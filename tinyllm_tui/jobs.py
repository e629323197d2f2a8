"""Training jobs as child processes that outlive the app, and their run directories read back.

A job is `tinyllm train <phase> ... --run-dir DIR` started in its own session (so closing or crashing
the app does not kill it) with its output in DIR/train.log. Everything the app knows about a job comes
from DIR (job.json, metrics.jsonl, train.log; described in training/run_dir.py), so a reopened app
reattaches to running jobs by scanning engine.paths.runs_dir(). No textual here: the Train panel's
worker threads call `Runs`, which hands back plain snapshots for the UI thread to draw.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import paths
from training.run_dir import RunDir

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
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        self.process = process  # set only for jobs this app started (so it can reap them)
        self.metrics = Metrics(self.run.metrics)

    @property
    def name(self) -> str:
        return self.run_dir.name

    def info(self) -> dict:
        return self.run.job()

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
            with open(self.run.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        # A progress bar redraws its line with \r: keep what the last redraw left on screen.
        return [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n") if line.strip()][-lines:]


@dataclass(frozen=True)
class RunView:
    """What the Train panel draws for one run: a copy, so the UI thread never reads the files itself."""

    name: str
    status: str  # running | stopped | finished | failed
    total_steps: int | None
    last_step: dict
    last_eval: dict
    end_message: str
    train_curve: tuple[tuple[int, float], ...]
    val_curve: tuple[tuple[int, float], ...]
    log: tuple[str, ...]


@dataclass(frozen=True)
class RunsSnapshot:
    statuses: dict[str, str]  # every known run's status, oldest first
    selected: str | None  # the run to show: the one asked for, or a newly found run while that one is idle
    view: RunView | None  # the selected run


class Runs:
    """The runs the Train panel knows. Its worker threads call these methods (one at a time, under a
    lock); each reads or changes run directories and processes and returns plain values."""

    def __init__(self, trainer: list[str] | None = None, log_lines: int = 3):
        self.trainer, self.log_lines = trainer, log_lines
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def poll(self, selected: str | None) -> RunsSnapshot:
        """Pick up new run directories, read what each job appended, and describe `selected`."""
        with self._lock:
            for job in scan():
                if job.name not in self.jobs:
                    self.jobs[job.name] = job
                    if selected not in self.jobs or not self.jobs[selected].alive():
                        selected = job.name
            statuses = {name: job.status() for name, job in self.jobs.items()}
            return RunsSnapshot(statuses, selected, self._view(self.jobs[selected], statuses[selected])
                                if selected in self.jobs else None)

    def _view(self, job: Job, status: str) -> RunView:
        job.metrics.poll()
        metrics = job.metrics
        total = metrics.last_step.get("total_steps") or metrics.start.get("total_steps") or job.info().get("total_steps")
        return RunView(job.name, status, total, dict(metrics.last_step), dict(metrics.last_eval),
                       str(metrics.end.get("message") or ""), tuple(metrics.train_curve), tuple(metrics.val_curve),
                       tuple(job.log_tail(self.log_lines)))

    def start(self, phase: str, data: list[str], preset: str, steps: int, extra: list[str] = ()) -> str:
        with self._lock:
            job = start(phase, data, preset, steps, extra, trainer=self.trainer)
            self.jobs[job.name] = job
            return job.name

    def stop(self, name: str) -> bool:
        with self._lock:
            job = self.jobs.get(name)
            return job is not None and job.stop()

    def resume(self, name: str) -> str:
        """Start the stopped run `name` again; ValueError when it cannot be."""
        with self._lock:
            job = self.jobs.get(name)
            if job is None or job.alive():
                raise ValueError("select a stopped run to resume")
            self.jobs[name] = resume(job, trainer=self.trainer)
            return name


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
    run = RunDir(run_dir)
    with open(run.log, "ab") as log:
        # Own session: a ctrl+c or crash in the app does not reach the job.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    # The trainer records itself as it starts; this lets a reopened app find the job before that.
    run.start_job(phase, total_steps, argv=argv, pid=process.pid)
    return Job(run_dir, process)


def scan(root: Path | None = None) -> list[Job]:
    """Every run directory, oldest first (names carry their start time)."""
    root = Path(root) if root else paths.runs_dir()
    if not root.is_dir():
        return []
    jobs = [Job(d) for d in root.iterdir() if d.is_dir() and ((d / "job.json").exists() or (d / "metrics.jsonl").exists())]
    return sorted(jobs, key=lambda job: (_started(job.run) or job.run_dir.stat().st_mtime, job.name))


def _new_run_dir(phase: str) -> Path:
    root = paths.runs_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = root / f"{phase}-{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = root / f"{phase}-{stamp}-{n}"
    return candidate


def _started(run: RunDir) -> float:
    started = run.job().get("started", 0)
    return float(started) if isinstance(started, (int, float)) else 0.0


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
