"""`tinyllm ask`: the inline prompt, driven through prompt_toolkit's pipe input (no terminal needed)."""
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from engine.feedback import FeedbackStore
from tinyllm_tui.commands.ask import Answer, _record, ask

CANDIDATES = ["ls -la", "ls -l", "ls"]


def run_ask(keys: str, request=None) -> Answer | None:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return ask(request, lambda r: CANDIDATES if r == "list files" else [], input=pipe, output=DummyOutput())


def test_enter_takes_the_best_candidate():
    assert run_ask("list files\r\r") == Answer("list files", "ls -la", "ls -la")


def test_arrows_pick_another_candidate_and_it_can_be_edited():
    assert run_ask("\x1b[B\x1b[B /tmp\r", request="list files") == Answer("list files", "ls", "ls /tmp")


def test_no_candidate_gives_nothing():
    assert run_ask("\r", request="gibberish") is None


def test_an_edit_is_a_correction_and_a_pick_an_acceptance():
    _record(Answer("list files", "ls -l", "ls -l /tmp"))
    _record(Answer("list files", "ls -la", "ls -la"))
    store = FeedbackStore()
    assert [(c.request, c.suggested, c.corrected, c.source) for c in store.corrections()] == [
        ("list files", "ls -l", "ls -l /tmp", "ask")]
    assert [(a.request, a.command, a.source) for a in store.acceptances()] == [("list files", "ls -la", "ask")]
