"""Suggest: type a request, watch candidates stream in best first, copy one or correct it.

Decoding runs in a thread worker (exclusive: a new request cancels the old one between steps) and
posts CandidatesStreamed after each step; the list updates its rows in place so the cursor stays put.
"""
import time
from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, ListItem, ListView, Static
from textual.worker import get_current_worker

from engine.checks import DOUBTS, NOT_INSTALLED
from engine.errors import EngineError
from engine.safety import destructive_reason

from ..messages import CandidatesStreamed, SuggestionFailed
from .placeholders import PlaceholderForm, placeholders

# The clock that times a suggestion; snapshot tests swap it for a fixed one.
clock = time.perf_counter
STREAM_INTERVAL_S = 0.1


@dataclass
class Suggestion:
    request_id: int
    request: str
    candidates: list = field(default_factory=list)
    elapsed_ms: float | None = None  # None while decoding
    examples: list = field(default_factory=list)  # the known examples the model read (engine.examples.Example)


def candidate_text(rank: int, command: str, score: float, source: str = "model", checks=()) -> Text:
    """One candidate: rank, command, score or where it came from, then a line with a worded badge when
    it is destructive and what the checks found (engine/checks.py: "not installed: jq", ...)."""
    origin = f"  score {score:.2f}" if source == "model" else f"  {source}"
    text = Text.assemble((f"{rank}. ", "dim"), (command, "bold"), (origin, "dim" if source == "model" else "italic green"))
    reason = destructive_reason(command)
    notes = [(f"⚠ DESTRUCTIVE: {reason}", "bold reverse")] if reason else []
    notes += [(note, "yellow" if note.startswith((NOT_INSTALLED, *DOUBTS)) else "dim") for note in checks]
    if notes:
        text.append("\n   ")
    for i, (note, style) in enumerate(notes):
        text.append("  " * (i > 0))
        text.append(note, style=style)
    return text


class CandidateItem(ListItem):
    """A candidate row; `e` swaps its text for an input holding the command, to correct it in place."""

    def __init__(self, rank: int, command: str, score: float, source: str = "model", checks=()) -> None:
        super().__init__()
        self.rank, self.command, self.score, self.source, self.checks = rank, command, score, source, checks

    def compose(self) -> ComposeResult:
        yield Static(candidate_text(self.rank, self.command, self.score, self.source, self.checks), id="candidate-text")
        # No select-on-focus: a correction is usually a small change to the command, not a new one.
        yield Input(id="candidate-edit", compact=True, select_on_focus=False, classes="hidden")

    def show(self, command: str, score: float, source: str = "model", checks=()) -> None:
        self.command, self.score, self.source, self.checks = command, score, source, checks
        for text in self.query("#candidate-text"):  # none yet when the item is still being mounted
            text.update(candidate_text(self.rank, command, score, source, checks))

    def start_edit(self) -> None:
        editor = self.query_one("#candidate-edit", Input)
        editor.value = self.command
        editor.cursor_position = len(self.command)
        self.query_one("#candidate-text").add_class("hidden")
        editor.remove_class("hidden")
        editor.focus()

    def end_edit(self) -> None:
        self.query_one("#candidate-edit", Input).add_class("hidden")
        self.query_one("#candidate-text").remove_class("hidden")


class CandidateList(ListView):
    BINDINGS = [
        Binding("c", "copy", "Copy", tooltip="Copy the highlighted command to the clipboard (OSC 52); "
                "one with {{placeholders}} asks for their values first", id="copy"),
        Binding("e", "correct", "Correct", tooltip="Edit the highlighted command and save it as a correction",
                id="correct"),
    ]

    def action_copy(self) -> None:
        item = self.highlighted_child
        if not (isinstance(item, CandidateItem) and item.command):
            return
        panel = next(a for a in self.ancestors if isinstance(a, SuggestPanel))
        if placeholders(item.command):
            panel.fill_placeholders(item.command)
        else:
            panel.copy(item.command)

    def action_correct(self) -> None:
        item = self.highlighted_child
        if isinstance(item, CandidateItem) and item.command:
            item.start_edit()


class SuggestPanel(Vertical):
    BINDINGS = [
        Binding("escape", "cancel_edit", "Cancel", show=False, tooltip="Stop correcting; keep the command as it was",
                id="cancel-edit"),
    ]

    def __init__(self, candidates: int = 3, beam_width: int = 4, max_new_tokens: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.engine = None
        self.model_note = "loading model…"
        self.model_loading = True
        self.pending: str | None = None  # a request sent while the model loads: it runs once it is ready
        self.n_candidates = candidates
        self.beam_width = max(beam_width, candidates)
        self.max_new_tokens = max_new_tokens
        self.history: list[Suggestion] = []
        self.current: Suggestion | None = None
        self.candidate_items: list[CandidateItem] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Describe a command, e.g. list files  (Enter)", id="request")
        yield Static(self.model_note, id="suggest-status")
        with Horizontal():
            with Vertical(id="candidates-box"):
                yield CandidateList(id="candidates")
                yield Static("", id="examples")
            with Vertical(id="history-box"):
                yield Label("History", classes="section")
                yield ListView(id="history")

    # -- the model ---------------------------------------------------------------------------------
    def show_model_loading(self) -> None:
        self.model_loading = True
        self.set_status("loading model…")

    def set_engine(self, engine, label: str) -> None:
        self.engine, self.model_loading = engine, False
        self.set_status(f"model: {label} · ready")
        if self.pending:
            request, self.pending = self.pending, None
            self.ask(engine, request)

    def set_unavailable(self, reason: str) -> None:
        self.engine, self.model_loading, self.pending = None, False, None
        self.set_status(f"⚠ {reason}. Here: Train tab to train one, Models tab to activate one.")

    def set_status(self, text: str) -> None:
        self.model_note = text
        self.query_one("#suggest-status", Static).update(text)

    # -- requests ------------------------------------------------------------------------------------
    @on(Input.Submitted, "#request")
    def submit_request(self, event: Input.Submitted) -> None:
        request = event.value.strip()
        if not request:
            return
        engine = self.engine  # read once: a compiled engine may replace it while this request decodes
        if engine is None and not self.model_loading:
            self.notify(self.model_note, severity="warning")
            return
        event.input.clear()  # ready for the next request; this one is in the history
        if engine is None:
            self.pending = request
            self.set_status(f"loading model… then “{request}”")
            return
        self.ask(engine, request)

    def ask(self, engine, request: str) -> None:
        self.current = Suggestion(len(self.history) + 1, request)
        self.history.append(self.current)
        self._show_candidates([])
        self._show_examples([])
        self.query_one("#suggest-status", Static).update(f"thinking… “{request}”")
        self._refresh_history()
        self.decode(engine, self.current.request_id, request)

    @work(thread=True, exclusive=True, group="suggest", exit_on_error=False)
    def decode(self, engine, request_id: int, request: str) -> None:
        worker = get_current_worker()
        start = last_shown = clock()
        candidates = []
        try:
            for step in engine.suggestions([request], n=self.n_candidates, width=self.beam_width,
                                           max_new_tokens=self.max_new_tokens):
                if worker.is_cancelled:
                    return
                candidates = step[0]
                # Redrawing every step starves decoding of the GIL (10x slower): show progress ~10 times a second.
                if clock() - last_shown >= STREAM_INTERVAL_S:
                    last_shown = clock()
                    self.post_message(CandidatesStreamed(request_id, candidates))
            examples = engine.neighbours(request)
        except EngineError as e:
            self.post_message(SuggestionFailed(request_id, str(e)))
            return
        self.post_message(CandidatesStreamed(request_id, candidates, done=True, elapsed_ms=(clock() - start) * 1000,
                                             examples=examples))

    def on_candidates_streamed(self, message: CandidatesStreamed) -> None:
        suggestion = self._by_id(message.request_id)
        if suggestion is None:
            return
        suggestion.candidates = message.candidates
        if message.done:
            suggestion.elapsed_ms = message.elapsed_ms
            suggestion.examples = message.examples
            self._refresh_history()
        if suggestion is self.current:
            self._show_candidates(message.candidates)
            if message.done:
                self._show_examples(message.examples)
            if message.done:
                found = len(message.candidates)
                self.query_one("#suggest-status", Static).update(
                    f"{found} candidate{'s' * (found != 1)} in {message.elapsed_ms:.0f} ms · c copy · e correct"
                    if found else "no command found: try rewording")

    def on_suggestion_failed(self, message: SuggestionFailed) -> None:
        self.query_one("#suggest-status", Static).update(f"could not suggest: {message.reason}")

    def _by_id(self, request_id: int) -> Suggestion | None:
        return next((s for s in self.history if s.request_id == request_id), None)

    def _show_candidates(self, candidates: list) -> None:
        # Rows are kept in our own list: removal from the DOM completes later, so a query right after
        # a removal would still return the rows on their way out.
        view = self.query_one("#candidates", CandidateList)
        for extra in self.candidate_items[len(candidates):]:
            extra.remove()
        del self.candidate_items[len(candidates):]
        for rank, candidate in enumerate(candidates, 1):
            if rank <= len(self.candidate_items):
                self.candidate_items[rank - 1].show(candidate.command, candidate.score, candidate.source, candidate.checks)
            else:
                item = CandidateItem(rank, candidate.command, candidate.score, candidate.source, candidate.checks)
                self.candidate_items.append(item)
                view.append(item)
        if candidates and view.index is None:
            view.index = 0

    def _show_examples(self, examples: list) -> None:
        """The known examples the model read for this request, most relevant first."""
        text = Text()
        if examples:
            text.append("read from known examples:", style="dim")
        for example in examples:
            text.append("\n  ")
            text.append(example.command, style="bold")
            text.append(f"  ← {example.request}  ({example.source})", style="dim")
        self.query_one("#examples", Static).update(text)

    def _refresh_history(self) -> None:
        view = self.query_one("#history", ListView)
        view.clear()
        for s in reversed(self.history):
            took = "…" if s.elapsed_ms is None else f"{s.elapsed_ms:.0f} ms"
            view.append(ListItem(Label(Text.assemble(s.request, (f"  {took}", "dim")))))

    @on(ListView.Selected, "#history")
    def recall(self, event: ListView.Selected) -> None:
        suggestion = list(reversed(self.history))[event.list_view.index or 0]
        self.current = suggestion
        self.query_one("#request", Input).value = suggestion.request
        self._show_candidates(suggestion.candidates)
        self._show_examples(suggestion.examples)

    # -- copying -------------------------------------------------------------------------------------
    def copy(self, command: str) -> None:
        self.app.copy_to_clipboard(command)
        self.notify(f"copied: {command}", timeout=3)

    def fill_placeholders(self, command: str) -> None:
        """Ask for the placeholders' values below the candidates; copy once they are filled."""
        self._close_form()
        request = self.current.request if self.current else ""
        self.query_one("#candidates-box").mount(PlaceholderForm(command, request, id="placeholder-form"),
                                               before="#examples")

    def on_placeholder_form_filled(self, message: PlaceholderForm.Filled) -> None:
        self.copy(message.command)
        self._close_form()

    def on_placeholder_form_cancelled(self, message: PlaceholderForm.Cancelled) -> None:
        self._close_form()

    def _close_form(self) -> None:
        for form in self.query(PlaceholderForm):
            form.remove()
        self.query_one("#candidates").focus()

    # -- corrections ---------------------------------------------------------------------------------
    @on(Input.Submitted, "#candidate-edit")
    def save_correction(self, event: Input.Submitted) -> None:
        event.stop()
        item = event.input.parent
        corrected = event.value.strip()
        item.end_edit()
        self.query_one("#candidates").focus()
        if not corrected or corrected == item.command or self.current is None:
            return
        from engine.feedback import FeedbackStore

        try:
            FeedbackStore().add_correction(self.current.request, item.command, corrected, source="tui")
        except EngineError as e:
            self.notify(str(e), severity="error")
            return
        self.notify("correction saved: review it in the Review tab", timeout=4)

    def action_cancel_edit(self) -> None:
        for item in self.query(CandidateItem):
            item.end_edit()
        self.query_one("#candidates").focus()

    def on_key(self, event) -> None:
        # Down from the request box goes to the candidates, like a shell's completion menu.
        if event.key == "down" and isinstance(self.app.focused, Input) and self.app.focused.id == "request":
            self.query_one("#candidates").focus()
            event.stop()
