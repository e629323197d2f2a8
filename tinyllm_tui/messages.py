"""Messages the app's workers and panels send each other (posted from worker threads with post_message)."""
from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class ModelLoaded(Message):
    engine: object  # engine.generate.Engine (not imported here: torch stays out of module import)
    label: str


@dataclass
class ModelCompiled(Message):
    """A compiled copy of the loaded engine `replaces`, ready to take over from it."""

    engine: object
    replaces: object
    label: str


@dataclass
class ModelUnavailable(Message):
    reason: str


@dataclass
class CandidatesStreamed(Message):
    """The best-first candidates so far for one request; a newer one for the same request replaces it."""

    request_id: int
    candidates: list  # list[engine.generate.Candidate]
    done: bool = False
    elapsed_ms: float = 0.0
    examples: list = field(default_factory=list)  # with the final one: the known examples the model read

    def can_replace(self, message: Message) -> bool:
        # Textual asks the message being handled whether the next queued one supersedes it: a burst of
        # decoding steps collapses to the latest, and the final one is never dropped.
        return isinstance(message, CandidatesStreamed) and message.request_id == self.request_id and not self.done


@dataclass
class SuggestionFailed(Message):
    request_id: int
    reason: str


class ActiveModelChanged(Message):
    """The Models panel switched the active version: the app reloads its engine."""


@dataclass
class UpdateFinished(Message):
    """`tinyllm update --json` ended: its parsed JSON, or what went wrong."""

    result: dict | None
    error: str = ""


@dataclass
class RunsPolled(Message):
    """The Train panel's poll of the run directories (a tinyllm_tui.jobs.RunsSnapshot)."""

    snapshot: object
    asked: str | None  # the run that was selected when the poll started


@dataclass
class FeedbackLoaded(Message):
    """The Review panel's read of the feedback store: corrections and update history, or why not."""

    corrections: list  # list[engine.feedback.Correction]
    updates: list  # list[engine.feedback.UpdateRecord]
    error: str = ""
    read: int = 0  # which refresh this answers (only the latest is drawn)


@dataclass
class VersionsLoaded(Message):
    """The Models panel's read of the model store."""

    versions: list  # list[engine.store.VersionInfo]
    active: int | None
    bundled: bool  # whether the bundled default model is installed (it answers when none is active)
    read: int = 0  # which refresh this answers (only the latest is drawn)


@dataclass
class WorkerNote(Message):
    """A panel's worker finished an action: a line for the user, and the run to select (Train)."""

    text: str
    severity: str = "information"
    select: str | None = None
