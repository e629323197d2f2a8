"""Shared fixtures: an isolated TINYLLM_HOME, a tokenizer and a nano model trained in seconds."""
import shutil
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.examples import examples_path, save_examples
from engine.model import GPT, preset
from engine.tokenizer import Tokenizer

# Tiny models gain nothing from a second thread, and on a busy 2-core machine it makes them far slower.
torch.set_num_threads(1)

# Small but varied: enough for a tokenizer and for a nano model to memorise the pairs.
PAIRS = [
    ("list files", "ls -la"),
    ("show disk usage", "df -h"),
    ("find python files", "find . -name '*.py'"),
    ("count lines in notes.txt", "wc -l notes.txt"),
    ("show running processes", "ps aux"),
    ("print working directory", "pwd"),
    ("make a directory called build", "mkdir -p build"),
    ("show the last lines of log.txt", "tail -n 20 log.txt"),
    ("search for error in app.log", "grep -n error app.log"),
    ("compress the folder docs", "tar -czf docs.tar.gz docs"),
]


@pytest.fixture(autouse=True)
def tinyllm_home(tmp_path, monkeypatch):
    """Every test gets its own TINYLLM_HOME: nothing leaks between tests or into the user's dirs."""
    home = tmp_path / "home"
    monkeypatch.setenv("TINYLLM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    from training.tokenizer_train import train_tokenizer

    corpus = [f"{request}\n{command}" for request, command in PAIRS] * 5
    return Tokenizer.from_bytes(train_tokenizer(corpus, vocab_size=400))


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer) -> GPT:
    """A nano GPT that has memorised PAIRS (greedy decoding reproduces each command)."""
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=tiny_tokenizer.vocab_size, context=128))
    examples = [tiny_tokenizer.encode_pair(r, c) for r, c in PAIRS]
    length = max(len(ids) for ids, _ in examples)
    x = torch.tensor([ids + [0] * (length - len(ids)) for ids, _ in examples])
    y = torch.tensor([labels[1:] + [-100] * (length - len(labels) + 1) for _, labels in examples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tiny_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.tlm"
    base = [{"instruction": r, "command": c} for r, c in PAIRS]
    return save_checkpoint(path, tiny_model, tiny_tokenizer,
                           {"name": "tiny-test", "steps": 200, "base_eval_set": base, "train_pairs_sample": base})


@pytest.fixture
def no_bundled_model(monkeypatch, tmp_path):
    """As if the package shipped no default model (what a user with none of their own would meet)."""
    monkeypatch.setattr("engine.store.BUNDLED_MODEL", tmp_path / "no-bundled-model.tlm")


def model_copy(checkpoint, directory, examples=(), reviewer: bool = False) -> Path:
    """`checkpoint` copied into `directory` as m.tlm, with an example index of `examples` beside it and,
    with `reviewer`, its own model stored as its reviewer: one of no skill, which still reorders."""
    model = Path(directory) / "m.tlm"
    if reviewer:
        c = load_checkpoint(checkpoint)
        save_checkpoint(model, c.model, c.tokenizer, c.meta, reviewer=c.model)
    else:
        shutil.copyfile(checkpoint, model)
    if examples:
        save_examples(examples_path(model), examples)
    return model


def both_orders(model, request: str) -> tuple[list[str], list[str]]:
    """(the model's own order, the reviewed one): the three commands for `request` each way."""
    from engine.generate import Engine

    engine = Engine.from_checkpoint(model)
    return ([c.command for c in engine.suggest(request, n=3, review=False)],
            [c.command for c in engine.suggest(request, n=3)])
