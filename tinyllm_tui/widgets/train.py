"""Train: start pretraining or SFT as a child process, follow it live, stop or resume it.

The panel polls the run directories on a 1 s timer (and only while it is shown) in a worker thread:
tinyllm_tui.jobs reads metrics incrementally and hands back a snapshot, so the UI thread only draws
and a burst of steps costs one redraw, not one per line. Start, stop and resume run in workers too.
"""
import shlex

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static
from textual.worker import Worker
from textual_plotext import PlotextPlot

from .. import jobs
from ..messages import RunsPolled, WorkerNote

PHASES = [("SFT (pairs)", "sft"), ("Pretrain (text)", "pretrain")]
PRESETS = ["nano", "mini", "tiny", "medium", "small", "ref67m"]
LOG_LINES = 3
# Fixed, because plotext otherwise takes the next colours of whichever theme was set when the curve is
# added, and that depends on whether the plot has been drawn once yet.
TRAIN_COLOR, VAL_COLOR = (157, 101, 255), (152, 224, 36)


def clock_text(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def stats_text(run: jobs.RunView) -> Text:
    step, evaluation, total = run.last_step, run.last_eval, run.total_steps
    done = step.get("step", 0)
    percent = f" ({100 * done / total:.0f}%)" if total else ""

    def num(value, fmt):
        return format(value, fmt) if isinstance(value, (int, float)) else "–"

    lines = [
        f"{run.status.upper()} · step {done}/{total or '?'}{percent}",
        f"loss {num(step.get('loss'), '.3f')} · val {num(evaluation.get('val_loss'), '.3f')}"
        f" · exact match {num(evaluation.get('exact_match'), '.2f')}",
        f"{num(step.get('tok_s'), ',.0f')} tok/s · lr {num(step.get('lr'), '.1e')}"
        f" · peak {num(step.get('peak_mem_mb'), ',.0f')} MB",
        f"elapsed {clock_text(step.get('elapsed'))} · ETA {clock_text(step.get('eta'))}",
    ]
    if run.end_message and run.status != "running":
        lines[-1] += f" · {run.end_message}"
    return Text("\n".join(lines))


class TrainPanel(Horizontal):
    BINDINGS = [
        Binding("ctrl+s", "start_job", "Start", tooltip="Start a training run with the settings on the left",
                id="train-start"),
        Binding("ctrl+t", "stop_job", "Stop", tooltip="Stop the selected run (it saves a checkpoint first)",
                id="train-stop"),
        Binding("ctrl+r", "resume_job", "Resume", tooltip="Resume the selected stopped run", id="train-resume"),
    ]

    def __init__(self, trainer: list[str] | None = None, data: str = "cli-pairs", preset: str = "nano",
                 steps: int = 200, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs = jobs.Runs(trainer, LOG_LINES)
        self.defaults = (data, preset if preset in PRESETS else "nano", steps)
        self.selected: str | None = None
        self.drawn_points = -1
        self.polling: Worker | None = None  # the poll in flight
        self.poll_again = False

    def compose(self) -> ComposeResult:
        data, preset, steps = self.defaults
        with Vertical(id="train-side"):
            yield Label("New run", classes="section")
            yield self._field("phase", Select(PHASES, value="sft", allow_blank=False, compact=True, id="phase",
                                              tooltip="SFT learns request → command pairs; pretraining learns text"))
            yield self._field("preset", Select([(p, p) for p in PRESETS], value=preset, allow_blank=False,
                                               compact=True, id="preset", tooltip="Model size (new models only)"))
            yield self._field("steps", Input(str(steps), type="integer", compact=True, id="steps",
                                             tooltip="Optimizer steps"))
            yield self._field("data", Input(data, compact=True, id="data",
                                            tooltip="Data specs, space separated: tldr nl2bash cli-pairs "
                                                    "jsonl:PATH (SFT); text:PATH man (pretraining)"))
            yield self._field("more", Input("", placeholder="e.g. --init FILE", compact=True, id="extra",
                                            tooltip="More trainer flags: --init CKPT --batch-size N --lr X ..."))
            with Horizontal(classes="buttons"):
                yield Button("Start", id="start", compact=True, tooltip="Start a run (ctrl+s)")
                yield Button("Stop", id="stop", compact=True, tooltip="Stop the selected run (ctrl+t)")
                yield Button("Resume", id="resume", compact=True, tooltip="Resume the selected run (ctrl+r)")
            yield Label("Runs", classes="section")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=False)
        with Vertical(id="train-main"):
            yield PlotextPlot(id="loss-plot")
            yield Static("No run selected: start one on the left.", id="train-stats")
            yield Static("", id="train-log")

    @staticmethod
    def _field(label: str, widget) -> Horizontal:
        return Horizontal(Label(label, classes="field-label"), widget, classes="field")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_column("run", key="run")
        table.add_column("status", key="status")
        self.set_interval(1.0, self.tick)
        self.tick()

    # -- polling -------------------------------------------------------------------------------------
    def shown(self) -> bool:
        node = self
        while node is not None and node is not self.screen:
            if not node.display:
                return False
            node = node.parent
        return self.is_mounted

    def tick(self) -> None:
        """Once a second while shown, and after each change: poll the runs in a worker; `on_runs_polled`
        draws. One poll at a time: a tick during one asks for another right after it."""
        if not self.shown():
            return
        if self.polling is not None and self.polling.is_running:
            self.poll_again = True
            return
        self.poll_again = False
        self.polling = self.poll_runs(self.selected)

    @work(thread=True, group="train-poll", exit_on_error=False)
    def poll_runs(self, selected: str | None) -> None:
        self.post_message(RunsPolled(self.runs.poll(selected), selected))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.polling and not event.worker.is_running and self.poll_again:
            self.tick()

    def on_runs_polled(self, message: RunsPolled) -> None:
        snapshot: jobs.RunsSnapshot = message.snapshot
        table = self.query_one("#runs", DataTable)
        for name, status in snapshot.statuses.items():
            if name not in table.rows:
                table.add_row(name, status, key=name)
            else:
                table.update_cell(name, "status", status)
        if self.selected != message.asked or snapshot.view is None:
            return  # the user picked another run meanwhile: its own poll draws it
        self.selected = snapshot.selected
        table.move_cursor(row=table.get_row_index(self.selected))
        self.draw(snapshot.view)

    def draw(self, run: jobs.RunView) -> None:
        self.query_one("#train-stats", Static).update(stats_text(run))
        self.query_one("#train-log", Static).update("\n".join(run.log) or "(no log yet)")
        points = len(run.train_curve) + len(run.val_curve)
        if points == self.drawn_points:
            return
        self.drawn_points = points
        plot = self.query_one("#loss-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title(f"loss · {run.name}")
        plt.xlabel("step")
        if run.train_curve:
            steps, losses = zip(*run.train_curve)
            plt.plot(steps, losses, label="train", marker="braille", color=TRAIN_COLOR)
        if run.val_curve:
            steps, losses = zip(*run.val_curve)
            plt.plot(steps, losses, label="val ×", marker="x", color=VAL_COLOR)
        plot.refresh()

    @on(DataTable.RowSelected, "#runs")
    @on(DataTable.RowHighlighted, "#runs")
    def select_run(self, event) -> None:
        name = event.row_key.value
        if name != self.selected:
            self.selected = name
            self.drawn_points = -1
            self.tick()

    # -- actions (each in a worker; the outcome comes back as a WorkerNote) ----------------------------
    @on(Button.Pressed, "#start")
    def action_start_job(self) -> None:
        try:
            steps = int(self.query_one("#steps", Input).value)
        except ValueError:
            self.notify("steps must be a whole number", severity="error")
            return
        data = self.query_one("#data", Input).value.split()
        if not data or steps <= 0:
            self.notify("give at least one data spec and a positive number of steps", severity="error")
            return
        try:
            extra = shlex.split(self.query_one("#extra", Input).value)
        except ValueError as e:
            self.notify(f"more flags: {e}", severity="error")
            return
        self.start_run(self.query_one("#phase", Select).value, data, self.query_one("#preset", Select).value,
                       steps, extra)

    @work(thread=True, group="train-actions", exit_on_error=False)
    def start_run(self, phase: str, data: list[str], preset: str, steps: int, extra: list[str]) -> None:
        try:
            name = self.runs.start(phase, data, preset, steps, extra)
        except OSError as e:
            self.post_message(WorkerNote(f"cannot start the trainer: {e}", "error"))
            return
        self.post_message(WorkerNote(f"started {name}", select=name))

    @on(Button.Pressed, "#stop")
    def action_stop_job(self) -> None:
        self.stop_run(self.selected or "")

    @work(thread=True, group="train-actions", exit_on_error=False)
    def stop_run(self, name: str) -> None:
        if self.runs.stop(name):
            self.post_message(WorkerNote(f"stopping {name}: saving a checkpoint…"))
        else:
            self.post_message(WorkerNote("no running job selected", "warning"))

    @on(Button.Pressed, "#resume")
    def action_resume_job(self) -> None:
        self.resume_run(self.selected or "")

    @work(thread=True, group="train-actions", exit_on_error=False)
    def resume_run(self, name: str) -> None:
        try:
            self.runs.resume(name)
        except (ValueError, OSError) as e:
            self.post_message(WorkerNote(str(e), "error"))
            return
        self.post_message(WorkerNote(f"resumed {name}", select=name))

    def on_worker_note(self, message: WorkerNote) -> None:
        message.stop()
        self.notify(message.text, severity=message.severity, timeout=3)
        if message.select:
            self.selected, self.drawn_points = message.select, -1
        self.tick()
