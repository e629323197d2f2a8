import logging

import pytest
import torch

from engine.errors import EngineError
from engine.generate import DecodeOptions, Engine
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
    # Installed first (engine/checks.py), then by score.
    ranks = [(any(n.startswith("not installed") for n in c.checks), -c.score) for c in candidates]
    assert ranks == sorted(ranks)
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
