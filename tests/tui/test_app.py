"""The app driven with Pilot: each tab against the tiny test model, a fake trainer and a fake update."""
import sys
from pathlib import Path

from textual.widgets import DataTable, Input, TabbedContent
from textual_plotext import PlotextPlot

from engine.checks import check_candidates
from engine.feedback import FeedbackStore
from engine.store import ModelStore
from tinyllm_tui.app import Settings, TinyLLMApp
from tinyllm_tui.widgets.help import HelpScreen
from tinyllm_tui.widgets.models import ModelsPanel
from tinyllm_tui.widgets.review import ReviewPanel
from tinyllm_tui.widgets.suggest import CandidateItem, CandidateList, SuggestPanel
from tinyllm_tui.widgets.train import TrainPanel

FAKE_TRAINER = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]


async def ask(app, pilot, request):
    app.query_one("#request", Input).value = request
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_a_request_sent_while_the_model_loads_runs_once_it_is_ready(tiny_checkpoint, monkeypatch):
    import threading

    import engine.loader

    release, load = threading.Event(), engine.loader.load_engine
    monkeypatch.setattr(engine.loader, "load_engine", lambda path: release.wait(30) and load(path))
    app = TinyLLMApp(model_path=tiny_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#request", Input).value = "list files"
        await pilot.press("enter")
        await pilot.pause()
        assert "then “list files”" in str(app.query_one("#suggest-status").render())
        assert not list(app.query(CandidateItem))
        release.set()
        for _ in range(3):  # the load, then the decode it starts
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert [item.command for item in app.query(CandidateItem)][0] == "ls -la"
        assert [s.request for s in app.query_one(SuggestPanel).history] == ["list files"]


async def test_suggest_streams_candidates_best_first(tiny_checkpoint):
    app = TinyLLMApp(model_path=tiny_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        panel = app.query_one(SuggestPanel)
        assert panel.engine is not None and app.sub_title == "model tiny.tlm"
        steps = []
        beam_search = panel.engine.beam_search

        def recording(*args, **kwargs):
            for step in beam_search(*args, **kwargs):
                steps.append(step[0])
                yield step

        panel.engine.beam_search = recording
        await ask(app, pilot, "list files")
        items = list(app.query(CandidateItem))
        # The final list is the last step's, checked: the nano model's invented `l ls -la` is gone,
        # and a spare hypothesis of the beam takes its place.
        assert [item.command for item in items] == [c.command for c in check_candidates(steps[-1])][:3]
        assert items[0].command == "ls -la" and len(steps[-1]) > 3 and len(items) == 3
        assert len(steps) >= 3 and steps[0][0].command != "ls -la"  # streamed: partial commands first
        scores = [c.score for c in steps[-1]]
        assert scores == sorted(scores, reverse=True)
        status = str(app.query_one("#suggest-status").render())
        assert "3 candidates in" in status and " ms" in status
        await ask(app, pilot, "show disk usage")
        await pilot.pause()
        shown = [item.command for item in app.query(CandidateItem)]
        assert shown[0] == "df -h" and shown == [item.command for item in panel.candidate_items]
        assert [s.request for s in panel.history] == ["list files", "show disk usage"]
        assert all(s.elapsed_ms and s.elapsed_ms > 0 for s in panel.history)


async def test_one_request_decodes_with_one_engine(tinyllm_home):
    """The compiled engine replacing the panel's engine mid-request: the request finishes on the one it began with."""
    from engine.generate import Candidate

    class NamedEngine:
        def __init__(self, name, during_search=lambda: None):
            self.name, self.during_search = name, during_search

        def suggestions(self, requests, n, width, max_new_tokens):
            self.during_search()
            yield [[Candidate(f"echo {self.name}", -0.1)]]
            yield [[Candidate(f"echo {self.name}", -0.1), Candidate(f"echo {self.name} known", -0.5, "example")]]

        def neighbours(self, request):
            return []

    app = TinyLLMApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        panel = app.query_one(SuggestPanel)
        compiled = NamedEngine("compiled")
        panel.engine = NamedEngine("eager", lambda: setattr(panel, "engine", compiled))
        await ask(app, pilot, "say hi")
        assert [item.command for item in app.query(CandidateItem)] == ["echo eager", "echo eager known"]
        await ask(app, pilot, "say hi again")
        assert [item.command for item in app.query(CandidateItem)] == ["echo compiled", "echo compiled known"]


async def test_destructive_candidates_carry_a_worded_badge():
    from tinyllm_tui.widgets.suggest import candidate_text

    assert "⚠ DESTRUCTIVE: deletes / recursively" in candidate_text(1, "rm -rf /", -0.5).plain
    assert "DESTRUCTIVE" not in candidate_text(1, "ls -la", -0.5).plain


async def test_checks_show_beside_the_danger_badge():
    from tinyllm_tui.widgets.suggest import candidate_text

    text = candidate_text(1, "rm -rf / && jq .", -0.5, checks=("not installed: jq",)).plain
    assert text.splitlines()[1].strip() == "⚠ DESTRUCTIVE: deletes / recursively  not installed: jq"
    assert len(candidate_text(1, "ls -la", -0.5).plain.splitlines()) == 1


async def test_a_candidate_with_placeholders_is_filled_in_before_it_is_copied(tinyllm_home):
    from engine.generate import Candidate
    from tinyllm_tui.messages import CandidatesStreamed
    from tinyllm_tui.widgets.placeholders import PlaceholderForm

    app = TinyLLMApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        panel = app.query_one(SuggestPanel)
        panel.engine = object()  # never called: the candidates are posted by hand
        panel.decode = lambda *args: None
        await ask(app, pilot, "extract backup.tar.gz into the folder out/")
        command = "tar -xzf {{path/to/archive.tar.gz}} -C {{path/to/directory}} {{path/to/archive.tar.gz}}"
        panel.post_message(CandidatesStreamed(1, [Candidate(command, -0.2)], done=True, elapsed_ms=5.0))
        await pilot.pause()
        await pilot.press("down", "c")
        await pilot.pause()
        form = app.query_one(PlaceholderForm)
        fields = list(form.query(Input))
        # One field per distinct placeholder, prefilled with what the request names.
        assert [f.value for f in fields] == ["backup.tar.gz", "out/"] and app.focused is fields[0]
        assert app.clipboard != command
        await pilot.press("enter")  # next field
        assert app.focused is fields[1]
        fields[1].value = ""
        await pilot.press(*"dest", "enter")  # the last field copies
        await pilot.pause()
        assert app.clipboard == "tar -xzf backup.tar.gz -C dest backup.tar.gz"
        assert not app.query(PlaceholderForm) and app.focused.id == "candidates"
        await pilot.press("c", "escape")  # Escape closes the form and copies nothing
        await pilot.pause()
        assert not app.query(PlaceholderForm) and app.clipboard == "tar -xzf backup.tar.gz -C dest backup.tar.gz"


async def test_copy_and_correct_a_candidate(tiny_checkpoint):
    app = TinyLLMApp(model_path=tiny_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await ask(app, pilot, "list files")
        await pilot.press("down")  # from the request box to the candidates
        assert app.focused.id == "candidates"
        await pilot.press("c")
        assert app.clipboard == "ls -la"
        await pilot.press("e")
        editor = app.focused
        assert isinstance(editor, Input) and editor.value == "ls -la"
        editor.value = ""
        await pilot.press(*"ls -lah", "c", "enter")  # typing "c" edits; it does not copy
        await pilot.pause()
        [correction] = FeedbackStore().corrections()
        assert (correction.request, correction.suggested, correction.corrected) == ("list files", "ls -la", "ls -lahc")
        assert correction.source == "tui" and correction.status == "pending"
        assert app.focused.id == "candidates"


async def test_no_model_is_a_clear_message_not_a_crash(no_bundled_model):
    app = TinyLLMApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.query_one("#suggest-status").render())
        assert "no model yet" in status and "Train tab" in status and "Models tab" in status
        await ask(app, pilot, "list files")  # refused politely
        assert not list(app.query(CandidateItem))


async def poll(app, pilot, panel):
    """One Train panel poll, run to the end and drawn (the worker reads the files; the UI thread draws)."""
    await app.workers.wait_for_complete()  # a poll the timer started earlier must not stand in for this one
    panel.tick()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_train_job_draws_the_loss_curve_and_stops(tinyllm_home, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_S", "0.02")
    app = TinyLLMApp(trainer=FAKE_TRAINER, settings=Settings(train_steps=40))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        panel = app.query_one(TrainPanel)
        await pilot.click("#start")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert panel.selected and panel.selected.startswith("sft-")
        job = panel.runs.jobs[panel.selected]
        job.wait(20)
        await poll(app, pilot, panel)
        assert job.info()["argv"] == [*FAKE_TRAINER, "sft", "--data", "cli-pairs", "--preset", "nano", "--steps",
                                      "40", "--no-progress", "--run-dir", str(job.run_dir)]
        assert len(job.metrics.train_curve) == 40 and len(job.metrics.val_curve) == 8
        assert panel.drawn_points == 48
        plot = app.query_one("#loss-plot", PlotextPlot)
        drawn = plot.render().plain
        assert "train" in drawn and "val ×" in drawn  # the legend names each curve
        assert any("\u2800" < ch <= "\u28ff" for ch in drawn)  # braille points: the curve is drawn
        stats = str(app.query_one("#train-stats").render())
        assert "FINISHED · step 40/40 (100%)\nloss 0.100" in stats and "exact match 1.00" in stats
        assert "step 40 loss" in str(app.query_one("#train-log").render())
        table = app.query_one("#runs", DataTable)
        assert table.get_row(panel.selected)[1:] == ["finished"]


async def test_train_tab_reattaches_and_stops_a_running_job(tinyllm_home, monkeypatch):
    from tinyllm_tui import jobs

    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    started = jobs.start("sft", ["cli-pairs"], "nano", 1000, trainer=FAKE_TRAINER)  # as if by an earlier app
    try:
        app = TinyLLMApp(trainer=FAKE_TRAINER)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f3")
            await app.workers.wait_for_complete()
            await pilot.pause()
            panel = app.query_one(TrainPanel)
            assert panel.selected == started.run_dir.name
            assert panel.runs.jobs[panel.selected].process is None  # found through its run dir
            await pilot.press("ctrl+t")
            await app.workers.wait_for_complete()
            started.wait(20)
            await poll(app, pilot, panel)
            assert "STOPPED" in str(app.query_one("#train-stats").render())
    finally:
        if started.alive():
            started.process.kill()


async def test_hidden_train_tab_does_not_read_metrics(tinyllm_home):
    app = TinyLLMApp(trainer=FAKE_TRAINER)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(TrainPanel)
        assert not panel.shown()
        run = tinyllm_home / "data" / "runs" / "sft-1"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text('{"event": "step", "step": 1, "loss": 1.0}\n')
        await poll(app, pilot, panel)
        assert panel.runs.jobs == {}
        await pilot.press("f3")  # shown: the next tick finds it
        await poll(app, pilot, panel)
        assert list(panel.runs.jobs) == ["sft-1"] and panel.selected == "sft-1"


async def test_review_accept_reject_edit_and_update(tinyllm_home, tmp_path):
    store = FeedbackStore()
    first = store.add_correction("list files", "ls", "ls -la", source="tui")
    second = store.add_correction("show disk usage", "du", "df -h", source="shell")
    fake_update = tmp_path / "fake_update.py"
    fake_update.write_text(
        "import json\nfrom engine.feedback import FeedbackStore, UpdateRecord\n"
        "FeedbackStore().record_update(UpdateRecord('rejected', new_before=0.25, new_after=0.75, base_before=0.5,"
        " base_after=0.3, message='forgot'))\n"
        "print('training...')\n"
        "print(json.dumps({'decision': 'rejected', 'new_delta': 0.5, 'base_delta': -0.2, 'version': None,"
        " 'corrections': [1]}))\n"
        "raise SystemExit(1)\n")  # as `tinyllm update --json` does when the gate rejects
    app = TinyLLMApp(update_command=[sys.executable, str(fake_update)])
    async def press(*keys):
        await pilot.press(*keys)
        await app.workers.wait_for_complete()  # the store is read and written in workers
        await pilot.pause()

    async with app.run_test(size=(80, 24)) as pilot:
        await press("f4")
        table = app.query_one("#corrections", DataTable)
        assert table.row_count == 2 and app.focused is table
        await press("a")
        assert store.get(first).status == "accepted"
        assert table.get_row(str(first))[1] == "accepted"  # re-read after the change
        await press("down", "r")
        assert store.get(second).status == "rejected"
        await press("e")
        editor = app.focused
        assert editor.id == "review-edit" and editor.value == "df -h"
        editor.value = ""
        await press(*"df -hT", "enter")  # "r" and "e" in the text are text, not actions
        assert store.get(second).corrected == "df -hT" and store.get(second).status == "rejected"
        await press("e")
        app.focused.value = ""
        await press("d", "u", "enter")  # the model's own command: the store refuses, the panel says why
        assert store.get(second).corrected == "df -hT"
        assert any("same as the suggestion" in n.message for n in app._notifications)
        await pilot.press("u")
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = str(app.query_one("#update-result").render())
        assert result == "decision: rejected · new Δ +0.500 · base Δ -0.200 · corrections #1"
        assert app.query_one("#updates", DataTable).row_count == 1


async def test_update_that_fails_shows_why(tinyllm_home):
    app = TinyLLMApp(update_command=[sys.executable, "-c", "import sys; sys.exit('tinyllm: nothing accepted')"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4", "u")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(app.query_one("#update-result").render()) == "update failed: tinyllm: nothing accepted"


async def test_models_activate_and_roll_back_reload_the_model(tiny_checkpoint):
    store = ModelStore()
    store.add(tiny_checkpoint)
    store.add(tiny_checkpoint, activate=True)
    app = TinyLLMApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        assert app.sub_title == "model v2"
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one("#versions", DataTable)
        assert [table.get_row_at(i)[:2] for i in range(2)] == [["", "v1"], ["● active", "v2"]]
        await pilot.press("b")  # roll back
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert store.active_version() == 1 and app.sub_title == "model v1"
        assert table.get_row_at(0)[0] == "● active"
        await pilot.press("down", "enter")  # activate v2 again
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert store.active_version() == 2 and app.sub_title == "model v2"


async def test_palette_help_and_tab_keys(tinyllm_home):
    app = TinyLLMApp()
    async with app.run_test(size=(80, 24)) as pilot:
        tabs = app.query_one(TabbedContent)
        for key, tab in (("f3", "train"), ("f4", "review"), ("f5", "models"), ("f2", "suggest")):
            await pilot.press(key)
            assert tabs.active == tab
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to models")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert tabs.active == "models"
        await app.run_action("panel('train', 'stop_job')")  # a panel's action from the palette
        await pilot.pause()
        assert tabs.active == "train"
        panels = [SuggestPanel, CandidateList, TrainPanel, ReviewPanel, ModelsPanel, HelpScreen]
        for binding in [*app.BINDINGS, *(b for panel in panels for b in panel.BINDINGS)]:
            assert binding.description and binding.tooltip


def test_settings_are_read_from_the_data_dir(tinyllm_home):
    (tinyllm_home / "data").mkdir(parents=True)
    (tinyllm_home / "data" / "tui.toml").write_text('candidates = 5\ntrain_preset = "tiny"\nbogus = 1\n')
    settings = Settings.load()
    assert (settings.candidates, settings.train_preset, settings.beam_width) == (5, "tiny", 4)


async def test_with_compile_the_compiled_engine_takes_over_when_ready(tiny_checkpoint, monkeypatch):
    import threading

    from engine.generate import Engine

    release = threading.Event()
    compiled = []

    def slow_compile(engine, widths, int8):  # stands in for minutes of compiling (tests/engine/test_compiled.py)
        release.wait(10)
        compiled.append(Engine(engine.model, engine.tokenizer, index=engine.index))
        return compiled[0]

    monkeypatch.setenv("TINYLLM_COMPILE", "int8")
    monkeypatch.setattr(Engine, "compiled", slow_compile)
    app = TinyLLMApp(model_path=tiny_checkpoint)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        panel = app.query_one(SuggestPanel)
        loaded = panel.engine
        await ask(app, pilot, "list files")  # answered while the compiler works
        assert panel.engine is loaded and app.query(CandidateItem)
        release.set()
        for _ in range(200):
            if panel.engine is not loaded:
                break
            await pilot.pause(0.05)
        assert panel.engine is compiled[0] and app.sub_title == "model tiny.tlm · compiled"
