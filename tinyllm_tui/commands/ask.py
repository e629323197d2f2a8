"""`tinyllm ask`: an inline prompt. Type a request, pick a candidate with the arrow keys, edit it, press
Enter: the command is printed on stdout and nothing runs, so `$(tinyllm ask)` works. The prompt draws
on stderr. Candidates come from the daemon when one answers, else from the model loaded here.
A command you changed is queued as a correction (source "ask"); one taken as it is, as an acceptance.
"""
import os
import sys
from dataclasses import dataclass


def register(subparsers) -> None:
    p = subparsers.add_parser("ask", help="inline prompt: pick and edit a suggestion; prints the command")
    p.add_argument("request", nargs="?", help="what you want to do (default: type it at the prompt)")
    p.add_argument("-n", type=int, default=5, help="number of candidates (default 5)")
    p.add_argument("--model", help="checkpoint file, loaded here (default: the daemon's or the active model)")
    p.add_argument("--no-feedback", action="store_true", help="record nothing (also: TINYLLM_NOFEEDBACK=1)")
    p.set_defaults(func=run)


@dataclass
class Answer:
    request: str
    suggested: str  # the candidate on screen when Enter was pressed
    command: str


def ask(request: str | None, fetch, history=None, input=None, output=None) -> Answer | None:
    """Run the two prompts; None when cancelled or nothing was suggested. `fetch(request) -> [commands]`."""
    from prompt_toolkit import PromptSession, print_formatted_text
    from prompt_toolkit.document import Document
    from prompt_toolkit.key_binding import KeyBindings

    session = PromptSession(history=history, input=input, output=output)
    while not (request or "").strip():
        request = session.prompt("ask> ")
    candidates = fetch(request)
    if not candidates:
        print_formatted_text("tinyllm: no suggestion for that", output=output)
        return None
    for i, command in enumerate(candidates, 1):
        print_formatted_text(f"  {i}. {command}", output=output)
    shown = [0]
    bindings = KeyBindings()

    def show(event, step: int) -> None:
        shown[0] = (shown[0] + step) % len(candidates)
        text = candidates[shown[0]]
        event.current_buffer.document = Document(text, len(text))

    bindings.add("up")(lambda event: show(event, -1))
    bindings.add("c-p")(lambda event: show(event, -1))
    bindings.add("down")(lambda event: show(event, 1))
    bindings.add("c-n")(lambda event: show(event, 1))
    picker = PromptSession(input=input, output=output, key_bindings=bindings,
                           bottom_toolbar=" up/down: other candidates   Enter: print it   Ctrl-C: cancel")
    command = picker.prompt("$ ", default=candidates[0]).strip()
    if not command:
        return None
    return Answer(request, candidates[shown[0]], command)


def run(args) -> int:
    from engine.errors import EngineError
    from engine.paths import data_dir

    from ..cli import UsageError

    if not 1 <= args.n <= 10:
        raise UsageError("-n must be between 1 and 10")
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("ask needs a terminal; in scripts use: tinyllm suggest REQUEST")
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.output import create_output

    try:
        answer = ask(args.request, lambda request: _candidates(request, args),
                     history=FileHistory(str(data_dir() / "ask_history")), output=create_output(stdout=sys.stderr))
    except EOFError:
        return 1
    if answer is None:
        return 1
    if not (args.no_feedback or os.environ.get("TINYLLM_NOFEEDBACK")):
        try:
            _record(answer)
        except EngineError as e:  # the command matters more than the record of it
            print(f"tinyllm: not recorded: {e}", file=sys.stderr)
    print(answer.command)
    return 0


def _candidates(request: str, args) -> list[str]:
    from .common import suggestions

    return [c["command"] for c in suggestions(request, args.n, args.model)["candidates"]]


def _record(answer: Answer) -> None:
    from engine.feedback import FeedbackStore

    store = FeedbackStore()
    if " ".join(answer.command.split()) == " ".join(answer.suggested.split()):
        store.add_acceptance(answer.request, answer.command, "ask")
    else:
        store.add_correction(answer.request, answer.suggested, answer.command, "ask")
