import pytest
import torch

from engine.checkpoint import save_checkpoint
from engine.generate import Engine
from engine.review import Reviewer
from tests.conftest import PAIRS, model_copy


class PrefersOne:
    """A reviewer that finds `liked` explains every request, and nothing else does."""

    def __init__(self, liked: str):
        self.liked, self.seen = liked, []

    def scores(self, request, commands):
        self.seen.append(list(commands))
        return [0.0 if c == self.liked else -1000.0 for c in commands]


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


def test_a_version_stores_the_reviewer_it_is_given_and_refuses_one_of_another_tokenizer(tiny_model, tiny_tokenizer,
                                                                                        tmp_path):
    from engine.checkpoint import load_checkpoint, stored_dtype
    from engine.errors import EngineError
    from engine.model import GPT
    from engine.store import ModelStore
    from engine.tokenizer import Tokenizer
    from training.tokenizer_train import train_tokenizer

    model = save_checkpoint(tmp_path / "m.tlm", tiny_model, tiny_tokenizer, {"name": "m"}, dtype=torch.bfloat16)
    assert Engine.from_checkpoint(model).reviewer is None
    torch.manual_seed(1)
    other = GPT(tiny_model.config)  # weights unlike the model's, so a swap would show
    reviewer = save_checkpoint(tmp_path / "r.tlm", other, tiny_tokenizer, {"name": "r"}, dtype=torch.bfloat16)
    store = ModelStore()
    version = store.path(store.add(model, reviewer=reviewer))
    stored, expected = load_checkpoint(version), load_checkpoint(model)
    assert stored_dtype(version) == torch.bfloat16 and stored.meta == expected.meta
    for mine, theirs in ((stored.model, expected.model), (stored.reviewer, load_checkpoint(reviewer).model)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    engine = Engine.from_checkpoint(version)
    assert isinstance(engine.reviewer, Reviewer) and engine.reviews() and engine.suggest("list files", n=3)

    foreign = Tokenizer.from_bytes(train_tokenizer([f"{c} means {r}" for r, c in PAIRS] * 5, vocab_size=300))
    mismatched = save_checkpoint(tmp_path / "f.tlm", GPT(tiny_model.config.__class__(**{**tiny_model.config.to_dict(),
                                 "vocab_size": foreign.vocab_size})), foreign, {})
    with pytest.raises(EngineError, match="f.tlm: a reviewer must use its model's tokenizer"):
        store.add(model, reviewer=mismatched)
    (tmp_path / "junk.tlm").write_bytes(b"not a checkpoint")
    with pytest.raises(EngineError, match="junk.tlm: not a tinyllm checkpoint"):
        store.add(model, reviewer=tmp_path / "junk.tlm")
    assert store.versions() == [1]  # neither took a version number


def test_the_lookups_commands_are_scored_as_the_model_would_write_them(tiny_model, tiny_tokenizer):
    from engine.examples import Example

    engine = Engine(tiny_model, tiny_tokenizer)
    best = engine.suggest("list files", n=3, review=False)[0]
    assert best.command == "ls -la" and best.source == "model"
    scored = engine.scored_examples("list files", [Example("show files", "ls -la", "t"), Example("x", "df -h", "t")], [])
    assert [c.command for c in scored] == ["ls -la", "df -h"] and all(c.source == "example" for c in scored)
    assert scored[0].logprob == pytest.approx(best.logprob, abs=1e-3)  # the beam's own log-probability
    assert scored[1].logprob < scored[0].logprob - 1  # a memorised command for another request is unlikely here
    assert engine.scored_examples("list files", [Example("show files", "ls -la", "t")], [best]) == []


def test_the_reviewer_ranks_the_lookups_commands_with_the_models(tiny_model, tiny_tokenizer):
    from engine.examples import Example, ExampleIndex

    engine = Engine(tiny_model, tiny_tokenizer, index=ExampleIndex([Example("list the files here", "find . -maxdepth 1", "t")]))
    own = engine.suggest("list files", n=3, review=False)
    assert own[0].command == "ls -la"
    engine.reviewer = PrefersOne("find . -maxdepth 1")
    reviewed = engine.suggest("list files", n=3)
    assert reviewed[0].command == "find . -maxdepth 1" and reviewed[0].source == "example"


def test_between_near_equals_the_command_this_machine_can_run_comes_first(tiny_model, tiny_tokenizer, tmp_path,
                                                                         monkeypatch):
    from engine.generate import Candidate

    (tmp_path / "ls").write_text("#!/bin/sh\n")
    (tmp_path / "ls").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # ls is installed, lsd is not
    engine = Engine(tiny_model, tiny_tokenizer)
    engine.reviewer = PrefersOne(None)  # no opinion: the model's scores and the cost decide

    def order(request, lsd_logprob):
        candidates = [Candidate("lsd -lS", None, logprob=lsd_logprob), Candidate("ls -lS", None, logprob=-3.0)]
        return [c.command for c in engine.reviewed(request, candidates)]

    assert order("list files by size", -2.0) == ["ls -lS", "lsd -lS"]
    assert order("list files by size", -0.5) == ["lsd -lS", "ls -lS"]  # a clear favourite stays first
    assert order("list files by size with lsd", -2.0) == ["lsd -lS", "ls -lS"]  # the user named it
    engine.options.checks = False
    assert order("list files by size", -2.0) == ["lsd -lS", "ls -lS"]
