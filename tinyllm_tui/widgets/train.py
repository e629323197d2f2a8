"""Train: start pretraining or SFT as a child process, follow it live, stop or resume it.

The panel polls the run directories on a 1 s timer (and only while it is shown): metrics are read
incrementally by tinyllm_tui.jobs, so a burst of steps costs one redraw, not one per line.
"""
import shlex

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from .. import jobs

PHASES = [("SFT (pairs)", "sft"), ("Pretrain (text)", "pretrain")]
PRESETS = ["nano", "tiny", "small", "ref67m"]
LOG_LINES = 3


def clock_text(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def stats_text(job: jobs.Job, status: str) -> Text:
    step, evaluation = job.metrics.last_step, job.metrics.last_eval
    total = step.get("total_steps") or job.metrics.start.get("total_steps") or job.info().get("total_steps")
    done = step.get("step", 0)
    percent = f" ({100 * done / total:.0f}%)" if total else ""

    def num(value, fmt):
        return format(value, fmt) if isinstance(value, (int, float)) else "–"

    lines = [
        f"{status.upper()} · step {done}/{total or '?'}{percent}",
        f"loss {num(step.get('loss'), '.3f')} · val {num(evaluation.get('val_loss'), '.3f')}"
        f" · exact match {num(evaluation.get('exact_match'), '.2f')}",
        f"{num(step.get('tok_s'), ',.0f')} tok/s · lr {num(step.get('lr'), '.1e')}"
        f" · peak {num(step.get('peak_mem_mb'), ',.0f')} MB",
        f"elapsed {clock_text(step.get('elapsed'))} · ETA {clock_text(step.get('eta'))}",
    ]
    end = job.metrics.end.get("message")
    if end and status != "running":
        lines[-1] += f" · {end}"
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
        self.trainer = trainer
        self.defaults = (data, preset if preset in PRESETS else "nano", steps)
        self.jobs: dict[str, jobs.Job] = {}
        self.selected: str | None = None
        self.drawn_points = -1

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
        """Once a second while shown: pick up new runs, read new metrics, redraw what changed."""
        if not self.shown():
            return
        for job in jobs.scan():
            if job.name not in self.jobs:
                self.jobs[job.name] = job
                if self.selected is None or self.jobs[self.selected].status() != "running":
                    self.selected = job.name
        table = self.query_one("#runs", DataTable)
        for name, job in self.jobs.items():
            status = job.status()
            if name not in table.rows:
                table.add_row(name, status, key=name)
            else:
                table.update_cell(name, "status", status)
        if self.selected:
            table.move_cursor(row=table.get_row_index(self.selected))
            self.draw(self.jobs[self.selected])

    def draw(self, job: jobs.Job) -> None:
        status = job.status()
        job.metrics.poll()
        self.query_one("#train-stats", Static).update(stats_text(job, status))
        self.query_one("#train-log", Static).update("\n".join(job.log_tail(LOG_LINES)) or "(no log yet)")
        points = len(job.metrics.train_curve) + len(job.metrics.val_curve)
        if points == self.drawn_points:
            return
        self.drawn_points = points
        plot = self.query_one("#loss-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title(f"loss · {job.name}")
        plt.xlabel("step")
        if job.metrics.train_curve:
            steps, losses = zip(*job.metrics.train_curve)
            plt.plot(steps, losses, label="train", marker="braille")
        if job.metrics.val_curve:
            steps, losses = zip(*job.metrics.val_curve)
            plt.plot(steps, losses, label="val ×", marker="x")
        plot.refresh()

    @on(DataTable.RowSelected, "#runs")
    @on(DataTable.RowHighlighted, "#runs")
    def select_run(self, event) -> None:
        name = event.row_key.value
        if name in self.jobs and name != self.selected:
            self.selected = name
            self.drawn_points = -1
            self.draw(self.jobs[name])

    # -- actions -------------------------------------------------------------------------------------
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
        phase = self.query_one("#phase", Select).value
        preset = self.query_one("#preset", Select).value
        job = jobs.start(phase, data, preset, steps, extra, trainer=self.trainer)
        self.jobs[job.name] = job
        self.selected, self.drawn_points = job.name, -1
        self.notify(f"started {job.name}", timeout=3)
        self.tick()

    @on(Button.Pressed, "#stop")
    def action_stop_job(self) -> None:
        job = self.jobs.get(self.selected or "")
        if job and job.stop():
            self.notify(f"stopping {job.name}: saving a checkpoint…", timeout=3)
        else:
            self.notify("no running job selected", severity="warning")

    @on(Button.Pressed, "#resume")
    def action_resume_job(self) -> None:
        job = self.jobs.get(self.selected or "")
        if job is None or job.alive():
            self.notify("select a stopped run to resume", severity="warning")
            return
        try:
            self.jobs[job.name] = jobs.resume(job, trainer=self.trainer)
        except ValueError as e:
            self.notify(str(e), severity="error")
            return
        self.drawn_points = -1
        self.notify(f"resumed {job.name}", timeout=3)
        self.tick()
