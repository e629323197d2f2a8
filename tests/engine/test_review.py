import logging
import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.generate import Engine
from engine.review import Reviewer, reviewer_path
from tests.conftest import PAIRS, model_copy


class PrefersOne:
    """A reviewer that finds `liked` explains every request, and nothing else does."""

    def __init__(self, liked: str):
        self.liked, self.seen = liked, []

    def scores(self, request, commands):
        self.seen.append(list(commands))
        return [0.0 if c == self.liked else -100.0 for c in commands]


def test_scores_are_the_requests_log_probability_given_each_command(tiny_model, tiny_tokenizer):
    reviewer = Reviewer(tiny_model, tiny_tokenizer)
    request, commands = "list files", ["ls -la", "find . -name '*.py' -newer x", "df -h"]
    batched = reviewer.scores(request, commands)
    for command, score in zip(commands, batched):
        ids, labels = tiny_tokenizer.encode_pair(command, request)
        with torch.no_grad():
            loss = tiny_model(torch.tensor([ids]), torch.tensor([labels[1:] + [-100]]))
        scored = sum(label != -100 for label in labels)
        assert score == pytest.approx(-float(loss) * scored, rel=1e-4)  # padding in a batch changes nothing
    assert reviewer.scores(request, []) == []


def test_the_reviewer_reorders_the_models_candidates_and_only_when_asked(tiny_model, tiny_tokenizer):
    engine = Engine(tiny_model, tiny_tokenizer)
    plain = [c.command for c in engine.suggest("list files", n=3)]
    assert plain[0] == "ls -la"
    engine.reviewer = PrefersOne(plain[1])
    reviewed = engine.suggest("list files", n=3)
    assert reviewed[0].command == plain[1] and reviewed[0].source == "model"
    assert len({c.command for c in reviewed}) == 3
    # It reads every beam of review_width, not the few the model's own order waits for.
    assert len(engine.reviewer.seen[-1]) > 3
    assert [c.command for c in engine.suggest("list files", n=3, review=False)] == plain
    engine.options.review = False
    assert [c.command for c in engine.suggest("list files", n=3)] == plain


def test_a_model_reads_the_reviewer_beside_it_and_does_without_a_broken_one(tiny_checkpoint, tiny_model,
                                                                              tiny_tokenizer, tmp_path, caplog):
    model = model_copy(tiny_checkpoint, tmp_path)
    assert Engine.from_checkpoint(model).reviewer is None
    save_checkpoint(reviewer_path(model), tiny_model, tiny_tokenizer, {"name": "reviewer"})
    engine = Engine.from_checkpoint(model)
    assert isinstance(engine.reviewer, Reviewer) and engine.reviews()
    assert engine.suggest("list files", n=3)
    reviewer_path(model).write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.ERROR, logger="tinyllm.engine"):
        engine = Engine.from_checkpoint(model)
    assert engine.reviewer is None and not engine.reviews()
    assert "m.reviewer.tlm: not a tinyllm checkpoint" in caplog.text and "without a reviewer" in caplog.text
    assert [c.command for c in engine.suggest(PAIRS[0][0], n=1)] == [PAIRS[0][1]]
