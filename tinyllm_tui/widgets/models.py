"""Models: the numbered versions with their scores and provenance; activate one or roll back.

Reading a version's metadata opens its checkpoint file, so the list is built in a worker thread.
"""
from pathlib import PurePath

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, Static

from engine.errors import EngineError
from engine.store import BUNDLED_MODEL, ModelStore

from ..messages import ActiveModelChanged

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

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def refresh_data(self) -> None:
        store = ModelStore()
        versions = store.list()
        self.app.call_from_thread(self._show, versions, store.active_version())

    def _show(self, versions, active) -> None:
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
            note = "No version active: the bundled default model answers." if BUNDLED_MODEL.is_file() else \
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

    def _switch(self, pick) -> None:
        store = ModelStore()
        try:
            version = pick(store)
            if version is None:
                raise EngineError("no earlier version to roll back to")
            if version == store.active_version():
                self.notify(f"v{version} is already active", timeout=3)
                return
            store.activate(version)
        except EngineError as e:
            self.notify(str(e), severity="error")
            return
        self.notify(f"active: v{version}", timeout=3)
        self.post_message(ActiveModelChanged())
        self.refresh_data()
