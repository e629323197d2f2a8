"""Judging predicted commands by running them in the sandbox (`tinyllm eval --exec`).

A candidate is right when it prints what a reference prints (whitespace collapsed), leaves the work directory
as that reference leaves it and succeeds or fails as it does, so `rm -f old.log` is as right as `rm old.log`,
`rm *.log` is wrong (it deletes more) and so is `df -h /home memory` for `df -h /home` (same lines printed, an
error besides). A candidate that does not finish is never right by running. A candidate whose text is a
reference's (whitespace collapsed) is right without running.

Each reference runs twice. It is judged by its text instead (metrics.exact_match) when running it tells
nothing: it printed or did something else the second time (dates, process lists), it did not finish in
time, it failed with nothing on stdout (no network, no docker, no systemd in the sandbox), or it printed
nothing and changed nothing (`cd`, `export`): any no-op would match it.
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from training.metrics import collapse, exact_match
from training.sandbox import Run, Sandbox

# Seconds from a reference's first run to its second: a clock printed to the second (`date`) has moved on.
RERUN_GAP = 1.1


@dataclass(frozen=True)
class Reference:
    command: str
    run: Run | None  # what running it did; None when it is judged by its text
    by_text: str = ""  # why it is judged by its text ("" when it is judged by running)


def reference(command: str, sandbox: Sandbox) -> Reference:
    """Run a reference (twice when once does not already rule it out) and decide how candidates are judged
    against it."""
    started = time.monotonic()
    first = sandbox.run(command)
    if first.timed_out:
        return Reference(command, None, "did not finish")
    if first.exit_code != 0 and not first.stdout.strip():
        return Reference(command, None, "fails in the sandbox")
    if not first.stdout.strip() and first.effect == sandbox.bed:
        return Reference(command, None, "shows and changes nothing")
    time.sleep(max(0.0, RERUN_GAP - (time.monotonic() - started)))
    if not same(first, sandbox.run(command)):
        return Reference(command, None, "differs between runs")
    return Reference(command, first)


def same(a: Run, b: Run) -> bool:
    return (a.timed_out == b.timed_out and (a.exit_code == 0) == (b.exit_code == 0)
            and collapse(a.stdout) == collapse(b.stdout) and a.effect == b.effect)


def judge(candidate: str, references: list[Reference], sandbox: Sandbox) -> bool:
    """Whether `candidate` does what one of the request's `references` does (made once per request by
    `reference`)."""
    if any(exact_match(candidate, r.command) for r in references):
        return True
    runs = [r.run for r in references if r.run is not None]
    if not runs:
        return False
    ran = sandbox.run(candidate)
    return any(same(ran, run) for run in runs)


def exec_scores(sandbox: Sandbox, references: list[list[str]], predictions: list[list[str]],
                progress: bool = False) -> dict:
    """exec_top1 (the first prediction right) and exec_top_n (any prediction right) over requests, in input
    order, and how many references were judged by their text. Requests are judged in parallel threads (each
    run is a process of its own)."""
    from tqdm import tqdm

    def one(commands: list[str], preds: list[str]) -> tuple[int | None, list[Reference]]:
        refs = [reference(command, sandbox) for command in commands]
        first_right = next((i for i, pred in enumerate(preds) if judge(pred, refs, sandbox)), None)
        return first_right, refs

    started = time.perf_counter()
    # Two threads a core: one may sit out RERUN_GAP; more would slow the runs themselves into timeouts.
    with ThreadPoolExecutor(2 * (os.cpu_count() or 1)) as pool, tqdm(total=len(predictions), unit="req", file=sys.stderr,
                                            disable=not progress, dynamic_ncols=True, desc="exec") as bar:
        results = []
        for result in pool.map(one, references, predictions):
            results.append(result)
            bar.update(1)
    count = max(1, len(results))
    judged = [r for _, refs in results for r in refs]
    return {"exec_top1": round(sum(first == 0 for first, _ in results) / count, 4),
            "exec_top_n": round(sum(first is not None for first, _ in results) / count, 4),
            "exec_references_by_text": sum(1 for r in judged if r.by_text),
            "exec_references": len(judged),
            "exec_seconds": round(time.perf_counter() - started, 2)}
