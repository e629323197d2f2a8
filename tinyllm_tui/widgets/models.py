"""Models: the numbered versions with their scores and provenance; activate one or roll back.

Reading a version's metadata opens its checkpoint file, and activating one writes the store's pointer,
so both run in worker threads that post their results; the UI thread only draws.
"""
from pathlib import PurePath

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, Static

from engine.errors import EngineError
from engine.store import BUNDLED_MODEL, ModelStore

from ..messages import ActiveModelChanged, VersionsLoaded, WorkerNote

ACTIVE_MARK = "● active"


def scores(meta: dict) -> dict:
    value = meta.get("eval") or {}
    return value if isinstance(value, dict) else {}


def exact_match_text(meta: dict) -> str:
    value = scores(meta).get("exact_match")
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def other_scores_text(meta: dict) -> str:
    rest = {k: v for k, v in scores(meta).items() if k != "exact_match"}
    return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rest.items()) or "–"


def parent_text(parent) -> str:
    """The model a version grew from. Writers differ: the trainer's --init path, a gated update's
    {"version", "path"}, or a bare version number; a file name is enough to show either way."""
    if isinstance(parent, dict):
        parent = parent.get("version", parent.get("path"))
    if parent is None:
        return "–"
    return f"v{parent}" if isinstance(parent, int) else PurePath(str(parent)).name


def data_text(meta: dict) -> str:
    data = meta.get("data", "–")
    return " ".join(map(str, data)) if isinstance(data, (list, tuple)) else str(data)


class ModelsPanel(Vertical):
    BINDINGS = [
        Binding("a", "activate", "Activate", tooltip="Make the selected version the active model (or enter)",
                id="activate"),
        Binding("b", "rollback", "Roll back", tooltip="Activate the version before the active one", id="rollback"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reads = 0  # refreshes asked for; only the latest one's result is drawn

    def compose(self) -> ComposeResult:
        yield Label("Model versions", classes="section")
        yield DataTable(id="versions", cursor_type="row")
        yield Static("", id="models-note")
        with Horizontal(classes="buttons"):
            yield Button("Activate", id="activate", compact=True, tooltip="Activate the selected version (a or enter)")
            yield Button("Roll back", id="rollback", compact=True, tooltip="Activate the previous version (b)")

    def on_mount(self) -> None:
        self.query_one("#versions", DataTable).add_columns(
            "", "version", "exact match", "steps", "parent", "data", "other scores", "name")
        self.refresh_data()

    def refresh_data(self) -> None:
        self.reads += 1
        self.read_versions(self.reads)

    @work(thread=True, group="models-read", exit_on_error=False)
    def read_versions(self, read: int) -> None:
        store = ModelStore()
        self.post_message(VersionsLoaded(store.list(), store.active_version(), BUNDLED_MODEL.is_file(), read=read))

    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        if message.read != self.reads:
            return  # a later read is on its way (it started after a change this one may not show)
        versions, active = message.versions, message.active
        table = self.query_one("#versions", DataTable)
        row = table.cursor_row
        table.clear()
        for v in versions:
            table.add_row(ACTIVE_MARK if v.active else "", f"v{v.version}", exact_match_text(v.meta),
                          str(v.meta.get("steps", "–")), parent_text(v.meta.get("parent")), data_text(v.meta),
                          other_scores_text(v.meta), str(v.meta.get("name", "")), key=str(v.version))
        if versions:
            table.move_cursor(row=min(row, len(versions) - 1))
        if not versions:
            note = "No versions yet: train one in the Train tab, or `tinyllm models add FILE`."
        elif active is None:
            note = "No version active: the bundled default model answers." if message.bundled else \
                "No version active: activate one (a)."
        else:
            note = f"Active: v{active}. Suggestions use it; rolling back activates the version before it."
        self.query_one("#models-note", Static).update(note)

    def selected_version(self) -> int | None:
        table = self.query_one("#versions", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)

    @on(Button.Pressed, "#activate")
    @on(DataTable.RowSelected, "#versions")
    def action_activate(self) -> None:
        version = self.selected_version()
        if version is not None:
            self._switch(lambda store: version)

    @on(Button.Pressed, "#rollback")
    def action_rollback(self) -> None:
        self._switch(lambda store: store.previous_version())

    @work(thread=True, group="models-write", exit_on_error=False)
    def _switch(self, pick) -> None:
        """Activate the version `pick(store)` names (None: nothing to roll back to)."""
        store = ModelStore()
        try:
            version = pick(store)
            if version is None:
                raise EngineError("no earlier version to roll back to")
            if version == store.active_version():
                self.post_message(WorkerNote(f"v{version} is already active"))
                return
            store.activate(version)
        except EngineError as e:
            self.post_message(WorkerNote(str(e), "error"))
            return
        self.post_message(WorkerNote(f"active: v{version}"))
        self.post_message(ActiveModelChanged())

    def on_worker_note(self, message: WorkerNote) -> None:
        message.stop()
        self.notify(message.text, severity=message.severity, timeout=3)
        self.refresh_data()
