"""Filling a candidate's {{placeholders}} before it is copied: an inline form with one field per
placeholder, prefilled where the request names the value ("extract backup.tar.gz" fills
{{path/to/archive.tar.gz}}). Enter moves to the next field and, on the last, copies; Escape cancels."""
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label

from training.data.placeholders import PLACEHOLDER

_NUMBER_WORDS = ("number", "count", "port", "pid", "size", "lines", "seconds", "minutes", "days", "depth")


def placeholders(command: str) -> list[str]:
    """The distinct placeholders of `command` (their text inside the braces), in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(command)))


def fill(command: str, values: dict[str, str]) -> str:
    """`command` with each placeholder replaced by its value; one left empty stays as it was."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or m.group(0), command)


def request_values(specs: list[str], request: str) -> dict[str, str]:
    """A value for each placeholder the request names: a file name with the same extension (or any
    file or path for a path), a URL, a number; each word of the request fills one placeholder."""
    words = [w.strip("\"'`,;:!?()") for w in request.split()]
    words = [w[:-1] if w.endswith(".") and w not in (".", "..") else w for w in words if w]  # a sentence's stop
    taken: set[int] = set()
    values = {}
    for spec in specs:
        choice = _pick(spec.lower(), words, taken)
        if choice is not None:
            taken.add(choice)
            values[spec] = words[choice]
    return values


def _pick(spec: str, words: list[str], taken: set[int]) -> int | None:
    free = [i for i in range(len(words)) if i not in taken and ("://" not in words[i] or "url" in spec or "http" in spec)]
    name = spec.rsplit("/", 1)[-1]
    if "url" in spec or "http" in spec:
        tests = [lambda w: "://" in w]
    elif any(word in name for word in _NUMBER_WORDS) or name.isdigit() or name == "n":
        tests = [str.isdigit]
    elif spec.startswith("path/to/") or any(word in name for word in ("file", "dir", "folder", "archive", "path")):
        extension = name.rsplit(".", 1)[1] if "." in name[1:] else ""
        tests = [lambda w: bool(extension) and w.endswith("." + extension), lambda w: "/" in w or "." in w[1:]]
    else:
        return None
    for test in tests:
        for i in free:
            if test(words[i]):
                return i
    return None


class PlaceholderForm(Vertical):
    """One field per placeholder of `command`; posts Filled with the command filled in, or Cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close the form; copy nothing", id="cancel-placeholders"),
    ]

    @dataclass
    class Filled(Message):
        command: str

    class Cancelled(Message):
        pass

    def __init__(self, command: str, request: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.specs = placeholders(command)
        self.values = request_values(self.specs, request)

    def compose(self) -> ComposeResult:
        yield Label("fill in, Enter for the next, Enter on the last copies · Esc cancels", classes="dim")
        for i, spec in enumerate(self.specs):
            yield Input(self.values.get(spec, ""), placeholder=spec, id=f"placeholder-{i}", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query(Input))
        position = fields.index(event.input)
        if position + 1 < len(fields):
            fields[position + 1].focus()
            return
        values = {spec: field.value.strip() for spec, field in zip(self.specs, fields)}
        self.post_message(self.Filled(fill(self.command, values)))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
