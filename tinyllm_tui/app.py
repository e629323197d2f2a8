"""The tinyllm app: Suggest, Train, Review and Models tabs over the engine, the trainer and the feedback queue.

The app owns the model: it loads it once in a worker at start-up (and again when the active version
changes) and hands the engine to the Suggest panel. Every worker failure ends in one handler that
shows it as a notification, so a broken model file or a missing command never takes the app down.
"""
import logging
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine import paths

from .messages import ActiveModelChanged, ModelCompiled, ModelLoaded, ModelUnavailable
from .widgets.help import HelpScreen
from .widgets.models import ModelsPanel
from .widgets.palette import AppCommands
from .widgets.review import ReviewPanel
from .widgets.suggest import SuggestPanel
from .widgets.train import TrainPanel

log = logging.getLogger("tinyllm.app")
TABS = ("suggest", "train", "review", "models")
FOCUS_ON_SHOW = {"suggest": "#request", "train": "#runs", "review": "#corrections", "models": "#versions"}


@dataclass
class Settings:
    """Read once at start-up from <data dir>/tui.toml; every key is optional."""

    candidates: int = 3
    beam_width: int = 4
    max_new_tokens: int = 64
    train_data: str = "cli-pairs"
    train_preset: str = "nano"
    train_steps: int = 200

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        path = path or paths.data_dir() / "tui.toml"
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, tomllib.TOMLDecodeError) as e:
            log.warning("ignoring %s: %s", path, e)
            return cls()
        known = {f.name for f in fields(cls)}
        for key in set(values) - known:
            log.warning("%s: unknown setting %r ignored", path, key)
        return cls(**{k: v for k, v in values.items() if k in known})


class TinyLLMApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "tinyllm"
    COMMANDS = App.COMMANDS | {AppCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", tooltip="Quit (running training jobs keep going)", priority=True,
                id="quit"),
        Binding("f1", "help", "Help", tooltip="Keys and what each tab does", id="help"),
        Binding("f2", "show_tab('suggest')", "Suggest", show=False, tooltip="Go to the Suggest tab", id="tab-suggest"),
        Binding("f3", "show_tab('train')", "Train", show=False, tooltip="Go to the Train tab", id="tab-train"),
        Binding("f4", "show_tab('review')", "Review", show=False, tooltip="Go to the Review tab", id="tab-review"),
        Binding("f5", "show_tab('models')", "Models", show=False, tooltip="Go to the Models tab", id="tab-models"),
    ]

    def __init__(self, model_path: str | Path | None = None, settings: Settings | None = None,
                 trainer: list[str] | None = None, update_command: list[str] | None = None) -> None:
        """model_path pins one checkpoint (tests); otherwise the active version or the bundled model."""
        super().__init__()
        self.model_path = Path(model_path) if model_path else None
        self.settings = settings or Settings()
        self.trainer = trainer
        self.update_command = update_command

    def compose(self) -> ComposeResult:
        s = self.settings
        yield Header()
        with TabbedContent(initial="suggest"):
            with TabPane("Suggest", id="suggest"):
                yield SuggestPanel(s.candidates, s.beam_width, s.max_new_tokens, id="suggest-panel")
            with TabPane("Train", id="train"):
                yield TrainPanel(self.trainer, s.train_data, s.train_preset, s.train_steps, id="train-panel")
            with TabPane("Review", id="review"):
                yield ReviewPanel(self.update_command, id="review-panel")
            with TabPane("Models", id="models"):
                yield ModelsPanel(id="models-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#request").focus()
        self.load_model()

    # -- the model -----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model(self) -> None:
        from engine.compiled import compile_requested
        from engine.errors import EngineError
        from engine.loader import compile_in_background, load_engine, resolve_model

        try:
            path, label = resolve_model(self.model_path)
            engine = load_engine(path)
        except EngineError as e:
            self.post_message(ModelUnavailable(str(e)))
            return
        self.post_message(ModelLoaded(engine, label))
        mode = compile_requested()
        if mode:  # TINYLLM_COMPILE=1 or int8: suggestions run eager until the compiled engine replaces this one
            compile_in_background(
                engine, label, mode, widths=(self.query_one(SuggestPanel).beam_width,),
                on_ready=lambda compiled: self.post_message(ModelCompiled(compiled, engine, label)),
                on_error=lambda reason: self.call_from_thread(self.notify, reason, severity="warning"))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.sub_title = f"model {message.label}"
        self.query_one(SuggestPanel).set_engine(message.engine, message.label)

    def on_model_compiled(self, message: ModelCompiled) -> None:
        panel = self.query_one(SuggestPanel)
        if panel.engine is message.replaces:  # not when another model was loaded while this one compiled
            panel.engine = message.engine
            self.sub_title = f"model {message.label} · compiled"

    def on_model_unavailable(self, message: ModelUnavailable) -> None:
        self.sub_title = "no model"
        self.query_one(SuggestPanel).set_unavailable(message.reason)

    def on_active_model_changed(self, message: ActiveModelChanged) -> None:
        self.query_one(ModelsPanel).refresh_data()
        if self.model_path is None:
            self.action_reload_model()

    def action_reload_model(self) -> None:
        self.query_one(SuggestPanel).show_model_loading()
        self.load_model()

    # -- navigation ----------------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id
        panel = self.query_one(f"#{tab}-panel")
        if hasattr(panel, "refresh_data"):
            panel.refresh_data()
        if isinstance(panel, TrainPanel):
            panel.tick()
        self.query_one(FOCUS_ON_SHOW[tab]).focus()

    def action_panel(self, tab: str, action: str) -> None:
        """Run one panel's action from the palette: show its tab first so the result is visible."""
        self.action_show_tab(tab)
        self.call_after_refresh(self.query_one(f"#{tab}-panel").run_action, action)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- failures ------------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            log.exception("worker %s failed", event.worker.name, exc_info=event.worker.error)
            self.notify(f"{event.worker.name} failed: {event.worker.error}", severity="error", timeout=8)
            if event.worker.group == "model":
                self.query_one(SuggestPanel).set_unavailable(f"could not load the model ({event.worker.error})")


def run_app() -> int:
    from .commands.common import setup_torch

    setup_torch()
    TinyLLMApp(settings=Settings.load()).run()
    return 0
