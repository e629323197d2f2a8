import logging

import pytest
import torch

from engine.errors import EngineError
from engine.examples import Example, ExampleIndex
from engine.feedback import FeedbackStore
from engine.generate import Candidate, DecodeOptions, Engine
from tests.conftest import PAIRS


@pytest.fixture(scope="module")
def engine(tiny_model, tiny_tokenizer):
    return Engine(tiny_model, tiny_tokenizer)


def test_greedy_reproduces_memorised_commands(engine):
    for request, command in PAIRS[:5]:
        assert engine.suggest(request, n=1)[0].command == command


def test_beam_returns_distinct_sorted_candidates(engine):
    candidates = engine.suggest("list files", n=4)
    assert len(candidates) >= 2
    commands = [c.command for c in candidates]
    assert len(set(commands)) == len(commands)
    # The beam's order: by score (the checks keep it, engine/checks.py).
    scores = [c.score for c in candidates if c.source == "model"]
    assert scores == sorted(scores, reverse=True)
    assert candidates[0].command == "ls -la"


def test_batched_suggestions_match_single_ones(engine):
    requests = [r for r, _ in PAIRS]
    batched = engine.suggest_batch(requests, n=1)
    assert [b[0].command for b in batched] == [engine.suggest(r, n=1)[0].command for r in requests]


def test_beam_search_streams_growing_candidates(engine):
    snapshots = list(engine.beam_search(["show disk usage"], width=2))
    assert len(snapshots) > 1
    assert snapshots[-1][0][0].command == "df -h"


def test_stream_yields_the_greedy_command(engine):
    assert "".join(engine.stream("find python files")) == "find . -name '*.py'"
    sampled = engine.complete("find python files", temperature=1.0, top_k=5, top_p=0.9, seed=1)
    assert sampled and "\n" not in sampled


def test_max_new_tokens_caps_output(engine):
    out = engine.suggest("compress the folder docs", n=1, max_new_tokens=2)[0].command
    assert len(engine.tokenizer.encode(out)) <= 2


def test_bad_requests(engine, caplog):
    with pytest.raises(EngineError):
        engine.suggest("   \n\t", n=1)
    # Odd requests get an answer (unchecked: what the nano model makes of them need not be a command).
    unchecked = Engine(engine.model, engine.tokenizer, options=DecodeOptions(checks=False))
    with caplog.at_level(logging.WARNING):
        long = unchecked.suggest("list files " * 500, n=1)
    assert long and "too long" in caplog.text
    assert unchecked.suggest("\x00\x1b list \xff files", n=1)
    assert unchecked.suggest(b"list \xff\xfe files", n=1)


def test_no_repeat_ngram_blocks_repeats(tiny_model, tiny_tokenizer):
    blocked = Engine(tiny_model, tiny_tokenizer, options=DecodeOptions(no_repeat_ngram=1))
    for candidate in blocked.suggest("list files", n=3):
        ids = tiny_tokenizer.encode(candidate.command)
        assert len(ids) == len(set(ids))


def scripted_step(tokens: list[int], vocab_size: int):
    """A stand-in for the model's cached step that picks `tokens` in order (then <eos>)."""
    calls = []

    def step(idx, positions, valid, keys, values, last_only=False):
        token = tokens[len(calls)] if len(calls) < len(tokens) else 3
        calls.append(token)
        logits = torch.zeros(idx.size(0), 1, vocab_size)
        logits[:, :, token] = 100.0
        return logits

    return step


def test_stream_sends_a_character_spread_over_byte_tokens_once(tiny_model, tiny_tokenizer):
    ids = tiny_tokenizer.encode("ls é")
    assert tiny_tokenizer.sp.id_to_piece(ids[-2]) == "<0xC3>"  # é is two byte-fallback tokens
    engine = Engine(tiny_model, tiny_tokenizer, step=scripted_step(ids, tiny_tokenizer.vocab_size))
    pieces = list(engine.stream("list files"))
    assert "".join(pieces) == "ls é" and pieces[-1] == "é"
    assert not any("\ufffd" in piece for piece in pieces)


# -- the lookup's commands in the places of candidates the checks drop (Engine.with_known) ----------

INDEX = [Example("list files", "ls -la", "tldr"), Example("list all files", "ls -a", "tldr"),
         Example("list files by size", "ls -lS", "tldr"), Example("list files with a prompt", "$ ls -1", "tldr"),
         Example("list files in a broken pipe", "ls -la |", "tldr"), Example("show disk usage", "df -h", "tldr")]
# What the model might say for "list files": one good command, scored below what the model gives the
# lookup's commands (they must still come after it), and two the checks drop (an invented program, a
# command that does not parse).
DECODED = [Candidate("ls -la", -9.0), Candidate("frobnicate --all", -9.1), Candidate("ls -la |", -9.2)]


def index_engine(tiny_model, tiny_tokenizer, **options) -> Engine:
    return Engine(tiny_model, tiny_tokenizer, options=DecodeOptions(**options), index=ExampleIndex(INDEX))


def test_the_lookup_fills_the_places_the_checks_free(tiny_model, tiny_tokenizer):
    engine = index_engine(tiny_model, tiny_tokenizer, blend=False)
    out = engine.with_known("list files", DECODED, 3)
    assert out[0] == Candidate("ls -la", -9.0)  # the model's survivor first
    looked = [c for c in engine.lookup("list files", 3) if c != "ls -la"]
    assert out[1:] == [Candidate(c, None, "example") for c in looked[:2]]  # in the lookup's order, unscored


def test_the_filled_commands_are_checked_and_never_repeat_one(tiny_model, tiny_tokenizer):
    engine = index_engine(tiny_model, tiny_tokenizer)
    out = engine.with_known("list files", DECODED, 6)
    commands = [c.command for c in out]
    # "ls -la |" from the index is dropped like the model's; "$ ls -1" is cleaned; "ls -la" comes once.
    assert commands[0] == "ls -la" and sorted(commands[1:]) == ["ls -1", "ls -a", "ls -lS"]
    assert next(c for c in out if c.command == "ls -1").checks == ("cleaned: prompt",)
    # A filled command that cleans to one already shown does not come twice.
    out = engine.with_known("list files", [Candidate("ls -1", -9.0), *DECODED[1:]], 6)
    assert sorted(c.command for c in out) == sorted(["ls -1", "ls -la", "ls -a", "ls -lS"])


def test_the_users_corrections_stay_first_when_the_lookup_fills(tiny_model, tiny_tokenizer, tinyllm_home):
    engine = index_engine(tiny_model, tiny_tokenizer)
    store = FeedbackStore(tinyllm_home / "feedback.db")
    store.accept(store.add_correction("list files", "ls -la", "ls -lah", "cli"))
    engine.index.attach_feedback(tinyllm_home / "feedback.db")
    out = engine.with_known("list files", DECODED, 4)
    assert (out[0].command, out[0].source) == ("ls -lah", "your correction #1")
    assert out[1].command == "ls -la" and {c.source for c in out[2:]} == {"example"}
    commands = [c.command for c in out]
    assert len(out) == 4 and len(set(commands)) == 4  # the correction, also a neighbour now, comes once


def test_without_checks_nothing_is_dropped_or_filled(tiny_model, tiny_tokenizer):
    engine = index_engine(tiny_model, tiny_tokenizer, checks=False, blend=False)
    assert engine.with_known("list files", DECODED, 3) == DECODED
    assert engine.with_known("list files", DECODED[:1], 3) == DECODED[:1]


def test_a_program_the_request_names_is_not_called_invented(tiny_model, tiny_tokenizer):
    engine = index_engine(tiny_model, tiny_tokenizer, blend=False)
    kept = engine.with_known("show why a package is installed with frobnicate", DECODED[1:2], 1)
    assert [(c.command, c.checks) for c in kept] == [("frobnicate --all", ("not installed: frobnicate",))]
    assert "frobnicate --all" not in [c.command for c in engine.with_known("list files", DECODED, 3)]


def test_a_command_with_an_option_its_program_never_took_goes_last(tiny_model, tiny_tokenizer):
    # (the same for a repeated argument: both are doubts, engine/checks.py DOUBTS)
    engine = index_engine(tiny_model, tiny_tokenizer)
    decoded = [Candidate("ls --invented", -1.0), Candidate("ls -la", -2.0)]
    out = engine.with_known("list files", decoded, 6)
    assert out[-1].command == "ls --invented" and out[-1].checks == ("unseen option: --invented",)
    assert not any("unseen" in note for c in out[:-1] for note in c.checks)  # the others, the model's second first
    assert out[0].command == "ls -la"
    # It moves within the list, it does not push a command out of it.
    assert [c.command for c in engine.with_known("list files", decoded, 2)] == ["ls -la", "ls --invented"]


# -- when a request stops decoding (Engine.settled) ---------------------------------------------------

def test_with_the_lookup_filling_the_list_only_the_models_best_is_waited_for(tiny_model, tiny_tokenizer):
    engine = index_engine(tiny_model, tiny_tokenizer)
    three = INDEX[:3]
    assert engine.settled(3, 3, three) == 1
    assert engine.settled(3, 3, three[:1]) == 2  # the model's second fills the place the lookup leaves
    assert engine.settled(3, 4, []) == 3
    assert index_engine(tiny_model, tiny_tokenizer, blend=False).settled(3, 3, three) == 3  # the model's list comes first


def test_stopping_at_the_best_keeps_it_and_decodes_fewer_steps(engine):
    steps = {}
    for settle in (1, 3):
        snapshots = list(engine.beam_search([r for r, _ in PAIRS], width=3, settle=[settle] * len(PAIRS)))
        steps[settle] = len(snapshots)
        best = [candidates[0].command for candidates in snapshots[-1]]
        assert best == [command for _, command in PAIRS]
    assert steps[1] < steps[3]


def test_without_an_index_a_list_still_gets_all_its_candidates(engine):
    assert len(engine.suggest("list files", n=3)) == 3
