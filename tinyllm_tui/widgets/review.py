"""Review: the queue of corrections (accept / reject / edit) and the gated updates that learn from them.

The update itself is `tinyllm update --json`, run as a child process in a worker thread; the panel
shows the JSON it prints (its decision and deltas) and re-reads the update history afterwards.
Reads and writes of the feedback store run in worker threads too: the UI thread never waits on SQLite.
"""
import json
import os
import subprocess
import sys
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Static

from engine.errors import EngineError
from engine.feedback import Correction, FeedbackStore

from ..messages import ActiveModelChanged, FeedbackLoaded, UpdateFinished, WorkerNote

UPDATE_COMMAND = [sys.executable, "-m", "tinyllm_tui.cli", "update", "--json"]


def when(seconds: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(seconds))


def delta(value) -> str:
    return f"{value:+.3f}" if isinstance(value, (int, float)) else "–"


def update_summary(result: dict) -> str:
    """One line from `tinyllm update --json`; unknown keys are shown as they are."""
    decision = result.get("decision", "?")
    parts = [f"decision: {decision}"]
    for key, label in (("new_delta", "new Δ"), ("base_delta", "base Δ")):
        if key in result:
            parts.append(f"{label} {delta(result[key])}")
    version = result.get("version", result.get("new_version"))
    if version is not None and decision == "accepted":
        parts.append(f"v{version} now active")
    if result.get("corrections"):
        parts.append(f"corrections {', '.join(f'#{i}' for i in result['corrections'])}")
    if result.get("message"):
        parts.append(str(result["message"]))
    return " · ".join(parts)


class ReviewPanel(Vertical):
    BINDINGS = [
        Binding("a", "accept", "Accept", tooltip="Accept the selected correction for the next update", id="accept"),
        Binding("r", "reject", "Reject", tooltip="Reject the selected correction", id="reject"),
        Binding("e", "edit", "Edit", tooltip="Edit the selected correction's command", id="edit"),
        Binding("u", "run_update", "Update", tooltip="Run a gated update on the accepted corrections",
                id="run-update"),
        Binding("escape", "cancel_edit", "Cancel", show=False, tooltip="Stop editing; keep the correction as it was",
                id="cancel-review-edit"),
    ]

    def __init__(self, update_command: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.update_command = update_command or UPDATE_COMMAND
        self.editing: int | None = None
        self.corrections: dict[int, Correction] = {}  # as last read, by id
        self.reads = 0  # refreshes asked for; only the latest one's result is drawn

    def compose(self) -> ComposeResult:
        yield Label("Corrections", classes="section")
        yield DataTable(id="corrections", cursor_type="row")
        yield Input(id="review-edit", compact=True, classes="hidden",
                    placeholder="corrected command (Enter saves, Esc cancels)")
        with Horizontal(classes="buttons"):
            yield Button("Accept", id="accept", compact=True, tooltip="Accept the selected correction (a)")
            yield Button("Reject", id="reject", compact=True, tooltip="Reject the selected correction (r)")
            yield Button("Edit", id="edit", compact=True, tooltip="Edit the selected correction (e)")
            yield Button("Run update", id="run-update", compact=True,
                         tooltip="Train on accepted corrections; keep the result only if the gate passes (u)")
        yield Static("", id="update-result")
        yield Label("Updates", classes="section")
        yield DataTable(id="updates", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#corrections", DataTable).add_columns(
            "id", "status", "request", "model's command", "your command", "source", "time")
        self.query_one("#updates", DataTable).add_columns(
            "id", "time", "decision", "new Δ", "base Δ", "versions", "message")
        self.refresh_data()

    def refresh_data(self) -> None:
        self.reads += 1
        self.read_feedback(self.reads)

    @work(thread=True, group="review-read", exit_on_error=False)
    def read_feedback(self, read: int) -> None:
        try:
            store = FeedbackStore()
            self.post_message(FeedbackLoaded(store.corrections(), store.updates(), read=read))
        except EngineError as e:
            self.post_message(FeedbackLoaded([], [], str(e), read=read))

    def on_feedback_loaded(self, message: FeedbackLoaded) -> None:
        if message.read != self.reads:
            return  # a later read is on its way (it started after a change this one may not show)
        if message.error:
            self.query_one("#update-result", Static).update(f"feedback store: {message.error}")
            return
        corrections, updates = message.corrections, message.updates
        self.corrections = {c.id: c for c in corrections}
        table = self.query_one("#corrections", DataTable)
        row = table.cursor_row
        table.clear()
        for c in corrections:
            table.add_row(str(c.id), c.status, c.request, c.suggested, c.corrected, c.source, when(c.created),
                          key=str(c.id))
        if corrections:
            table.move_cursor(row=min(row, len(corrections) - 1))
        history = self.query_one("#updates", DataTable)
        history.clear()
        for u in reversed(updates):
            versions = f"v{u.parent_version or '?'} → v{u.new_version}" if u.new_version else (
                f"v{u.parent_version}" if u.parent_version else "–")
            history.add_row(str(u.id), when(u.time), u.decision, delta(u.new_delta), delta(u.base_delta),
                            versions, u.message, key=str(u.id))

    def selected_id(self) -> int | None:
        table = self.query_one("#corrections", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)

    # -- queue actions -------------------------------------------------------------------------------
    def _change(self, verb: str) -> None:
        cid = self.selected_id()
        if cid is None:
            self.notify("no correction selected", severity="warning")
            return
        self.write_feedback(verb, cid)

    @work(thread=True, group="review-write", exit_on_error=False)
    def write_feedback(self, verb: str, cid: int, **fields) -> None:
        """`FeedbackStore().<verb>(cid, **fields)`: accept, reject or edit one correction."""
        try:
            getattr(FeedbackStore(), verb)(cid, **fields)
        except EngineError as e:
            self.post_message(WorkerNote(str(e), "error"))
            return
        self.post_message(WorkerNote(""))

    def on_worker_note(self, message: WorkerNote) -> None:
        message.stop()
        if message.text:
            self.notify(message.text, severity=message.severity)
        self.refresh_data()

    @on(Button.Pressed, "#accept")
    def action_accept(self) -> None:
        self._change("accept")

    @on(Button.Pressed, "#reject")
    def action_reject(self) -> None:
        self._change("reject")

    @on(Button.Pressed, "#edit")
    def action_edit(self) -> None:
        cid = self.selected_id()
        if cid not in self.corrections:
            return
        self.editing = cid
        editor = self.query_one("#review-edit", Input)
        editor.value = self.corrections[cid].corrected
        editor.remove_class("hidden")
        editor.focus()

    @on(Input.Submitted, "#review-edit")
    def save_edit(self, event: Input.Submitted) -> None:
        event.input.add_class("hidden")
        self.write_feedback("edit", self.editing, corrected=event.value)
        self.editing = None
        self.query_one("#corrections").focus()

    def action_cancel_edit(self) -> None:
        if self.editing is not None:
            self.query_one("#review-edit", Input).add_class("hidden")
            self.editing = None
            self.query_one("#corrections").focus()

    # -- gated update --------------------------------------------------------------------------------
    @on(Button.Pressed, "#run-update")
    def action_run_update(self) -> None:
        self.query_one("#update-result", Static).update("running gated update… (the app stays usable)")
        self.query_one("#run-update", Button).disabled = True
        self.run_update()

    @work(thread=True, exclusive=True, group="update", exit_on_error=False)
    def run_update(self) -> None:
        try:
            # Own session: quitting the app does not cut an update off half way.
            done = subprocess.run(self.update_command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  start_new_session=True, env=os.environ.copy())
        except OSError as e:
            self.post_message(UpdateFinished(None, str(e)))
            return
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
            if not isinstance(result, dict):
                raise ValueError
        except (IndexError, ValueError):
            stderr = done.stderr.strip().splitlines()
            self.post_message(UpdateFinished(None, stderr[-1] if stderr else f"exit status {done.returncode}"))
            return
        self.post_message(UpdateFinished(result))

    def on_update_finished(self, message: UpdateFinished) -> None:
        self.query_one("#run-update", Button).disabled = False
        text = update_summary(message.result) if message.result else f"update failed: {message.error}"
        self.query_one("#update-result", Static).update(text)
        self.refresh_data()
        if message.result and message.result.get("decision") == "accepted":
            self.post_message(ActiveModelChanged())
