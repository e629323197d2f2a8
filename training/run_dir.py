"""A training run's directory: what the TUI's dashboard and `--resume` read.

    job.json        phase, argv, pid, status, total_steps
    metrics.jsonl   one JSON event per line (start, step, eval, checkpoint, end)
    train.log       the job's output
    checkpoint.tlm  the latest model (engine checkpoint format)
    state.pt        optimizer, schedule position, data position, RNG: what --resume needs
"""
import json
import os
import sys
import time
from pathlib import Path

from engine import paths
from engine.atomic import write_text_atomic

from .errors import writing


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)

    @classmethod
    def new(cls, phase: str) -> "RunDir":
        return cls(paths.runs_dir() / f"{phase}-{time.strftime('%Y%m%d-%H%M%S')}")

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.tlm"

    @property
    def state(self) -> Path:
        return self.path / "state.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def job_file(self) -> Path:
        return self.path / "job.json"

    def job(self) -> dict:
        try:
            value = json.loads(self.job_file.read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def update_job(self, **fields) -> None:
        """The one writer of job.json (the trainer, and the app that spawns it): merges `fields` in."""
        with writing(self.job_file):
            write_text_atomic(self.job_file, json.dumps({**self.job(), **fields}, indent=1))

    def start_job(self, phase: str, total_steps: int | None, argv: list[str] | None = None,
                  pid: int | None = None) -> None:
        """Record a (re)started job: what runs it, which process, since when (the first start is kept)."""
        self.update_job(phase=phase, argv=list(argv or sys.argv), pid=pid or os.getpid(),
                        started=self.job().get("started", time.time()), status="running", total_steps=total_steps)

    def event(self, event: str, **fields) -> None:
        """Append one metrics event. One write per line keeps concurrent readers from seeing half a line."""
        line = json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n"
        with writing(self.metrics), open(self.metrics, "a") as f:
            f.write(line)
