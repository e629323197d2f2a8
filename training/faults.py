"""Kill -9 a training job again and again and resume it: it must end with the weights of a run never killed.
Run it with `tinyllm bench faults` (training/fault_bench.py: its options, kept free of torch).

The job is a tiny fine-tune (a nano model on generated pairs, a checkpoint every `--every` steps) that
this module forks into a child process on one CPU thread, so two runs are bit-identical. Each kill comes
at a random moment of training, half-way through writing a checkpoint's temp file, or just before the
rename that publishes it. After every kill the run's state.pt and checkpoint.tlm must load, and the
restart (`resume`) must start from the step state.pt holds.
"""
import json
import multiprocessing
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import torch

from engine.checkpoint import load_checkpoint
from engine.errors import EngineError
from engine.model import GPT, preset
from engine.tokenizer import Tokenizer

from .batches import PairBatches
from .data.records import Pair
from .run_dir import RunDir
from .tokenizer_train import train_tokenizer
from .trainer import TrainConfig, Trainer

PAIRS = [(f"print line {i} of notes{i % 7}.txt", f"sed -n {i}p notes{i % 7}.txt") for i in range(1, 41)]
KINDS = ("random", "mid-write", "before-rename")
CHECKPOINT_FILES = ("state.pt", "checkpoint.tlm")


# -- the job (child process) ----------------------------------------------------------------------

def _die_at_write(n: int, kind: str) -> None:
    """SIGKILL this process at its n-th checkpoint write: half-way through the temp file, or before the rename."""
    calls = 0

    def due(name: str) -> bool:
        nonlocal calls
        if any(name == f or name.startswith(f".{f}.") for f in CHECKPOINT_FILES):
            calls += 1
        return calls == n

    if kind == "mid-write":
        write_bytes = Path.write_bytes

        def cut_write(self, data):
            if due(self.name):
                with open(self, "wb") as f:
                    f.write(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return write_bytes(self, data)

        Path.write_bytes = cut_write
    else:
        replace = os.replace

        def cut_replace(src, dst):
            if due(Path(dst).name):
                os.kill(os.getpid(), signal.SIGKILL)
            return replace(src, dst)

        os.replace = cut_replace


def child(work: Path, run: Path, steps: int, every: int) -> None:
    tokenizer = Tokenizer.from_bytes((work / "tokenizer.model").read_bytes())
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=tokenizer.vocab_size, context=64))
    config = TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, eval_every=10**9, checkpoint_every=every,
                         bf16=False, progress=False)
    batches = PairBatches(tokenizer, [Pair(r, c, "bench") for r, c in PAIRS], batch_size=4, context=64, seed=1)
    trainer = Trainer(RunDir(run), config, model, tokenizer, batches)
    if trainer.run.state.is_file():
        trainer.resume()
    trainer.train()


# -- the driver -----------------------------------------------------------------------------------

def _events(run: Path, name: str) -> list[dict]:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [e for e in map(json.loads, lines) if e["event"] == name]


def _job(work: Path, run: Path, steps: int, every: int, fault: tuple[str, int] | None) -> None:
    log = os.open(run.parent / f"{run.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    if fault:
        _die_at_write(fault[1], fault[0])
    child(work, run, steps, every)


def _start(work: Path, run: Path, steps: int, every: int, fault: tuple[str, int] | None):
    """The job in a forked child: torch is already imported here, so a restart costs milliseconds."""
    job = multiprocessing.get_context("fork").Process(target=_job, args=(work, run, steps, every, fault))
    job.start()
    return job


def _exit_code(job, timeout: float) -> int | None:
    job.join(timeout)
    return job.exitcode


def _loadable(run: Path) -> tuple[bool, int | None]:
    """(whether the run's checkpoint files load, the step state.pt holds)."""
    step = None
    try:
        if (run / "state.pt").exists():
            step = torch.load(run / "state.pt", map_location="cpu", weights_only=True)["step"]
        if (run / "checkpoint.tlm").exists():
            load_checkpoint(run / "checkpoint.tlm")
    except (EngineError, RuntimeError, OSError, KeyError):
        return False, None
    return True, step


def run(plan: list[str], steps: int = 48, every: int = 3, seed: int = 0, timeout: float = 120.0) -> dict:
    """Kill the job once per entry of `plan` (a kind from KINDS); a run that finishes first is checked
    and a new one takes the remaining kills. Every run is compared with one never killed."""
    torch.set_num_threads(1)  # the forked jobs inherit it: bit-identical runs
    rng = random.Random(seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tl-faults-") as tmp:
        work = Path(tmp)
        corpus = [f"{r}\n{c}" for r, c in PAIRS] * 5
        (work / "tokenizer.model").write_bytes(train_tokenizer(corpus, vocab_size=300))
        reference = work / "reference"
        reference_job = _start(work, reference, steps, every, None)
        train_seconds = None

        def wait(job, name: str) -> None:
            if _exit_code(job, timeout) != 0:
                raise RuntimeError(f"the {name} run failed: {(work / f'{name}.log').read_text()[-2000:]}")

        done = {kind: 0 for kind in KINDS}
        checked = {"runs": 0, "identical": 0, "restarts": 0, "wrong_resume_steps": 0}
        unloadable = 0
        expected_starts: list[int] = []

        def check(faulted: Path) -> None:
            """Finish `faulted` if it is not, then compare its resumes and its weights."""
            if not _events(faulted, "end") or _events(faulted, "end")[-1]["status"] != "finished":
                wait(_start(work, faulted, steps, every, None), faulted.name)
            wait(reference_job, "reference")
            # Each restart started from the step its state.pt held at the kill before it.
            starts = [e["start_step"] for e in _events(faulted, "start")]
            checked["restarts"] += len(starts) - 1
            checked["wrong_resume_steps"] += sum(1 for a, b in zip(starts[1:], expected_starts) if a != b)
            a = load_checkpoint(reference / "checkpoint.tlm").model.state_dict()
            b = load_checkpoint(faulted / "checkpoint.tlm").model.state_dict()
            checked["runs"] += 1
            checked["identical"] += a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            expected_starts.clear()

        faulted = work / "faulted-0"
        while sum(done.values()) < len(plan):
            kind = plan[sum(done.values())]
            starts = len(_events(faulted, "start"))
            fault = None if kind == "random" else (kind, rng.randint(1, 2 * len(CHECKPOINT_FILES)))
            if kind == "random" and train_seconds is None:  # how long training takes, to kill inside it
                wait(reference_job, "reference")
                train_seconds = _events(reference, "end")[-1]["time"] - _events(reference, "start")[0]["time"]
            job = _start(work, faulted, steps, every, fault)
            if kind == "random":
                deadline = time.monotonic() + timeout
                while len(_events(faulted, "start")) == starts and job.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, train_seconds * 0.8))
                job.kill()
            if _exit_code(job, timeout) == 0:  # finished before the kill came: check it, start another
                check(faulted)
                faulted = work / f"faulted-{checked['runs']}"
                continue
            done[kind] += 1
            ok, step = _loadable(faulted)
            unloadable += not ok
            expected_starts.append(step or 0)
        check(faulted)
    return {"kills": sum(done.values()), "kills_by_kind": done, "steps": steps, "checkpoint_every": every,
            "runs": checked["runs"], "restarts": checked["restarts"], "wrong_resume_steps": checked["wrong_resume_steps"],
            "unloadable_after_kill": unloadable, "weights_identical": checked["identical"] == checked["runs"],
            "runs_identical": checked["identical"], "seconds": round(time.perf_counter() - started, 1)}
