"""The GPU run rehearsed at toy scale on the CPU: the same driver (prepare here, run, join back) and the
same kind of recipe as training/recipes/large.toml (tokenizer and reviewer of another model, a corpus,
pretraining and fine-tuning with time budgets), with a nano model and a few pairs."""
import json
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.generate import Engine
from tests.conftest import PAIRS
from training import device_run
from training.recipe import load_recipe

LOOP = "batch_size = 4\neval_every = 100\ncheckpoint_every = 100\nbf16 = false\nprogress = false\nseed = 0\n"


def _toy_recipe(tmp_path, name: str, parent, seconds: float, pretrain_steps: int = 3) -> str:
    recipe = tmp_path / f"{name}.toml"
    recipe.write_text(f'''name = "{name}"
[model]
preset = "nano"
context = 128
[tokenizer]
from = "{parent}"
[corpus]
man = []
scripts = false
[pretrain]
steps = {pretrain_steps}
seconds = {seconds}
lr = 1e-3
warmup = 1
{LOOP}
[sft]
data = ["tldr:{{data}}/tldr", "nl2bash:{{data}}/nl2bash"]
val_fraction = 0.2
augment = 1
steps = 3
seconds = {seconds}
eval_samples = 2
warmup = 1
{LOOP}
[retrieval]
k = 2
[export]
dtype = "bfloat16"
reviewer = "{parent}"
retrieval = {{ k = 1, adapt = true }}
index = ["core"]
''')
    return str(recipe)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """NL2Bash's and tldr's formats: 60 pairs, and 60 tldr pages (the corpus's documents, one per tool)."""
    data = tmp_path / "data"
    (data / "nl2bash").mkdir(parents=True)
    (data / "tldr" / "pages" / "common").mkdir(parents=True)
    pairs = [(f"{r} number {i}", f"{c} # {i}") for i in range(6) for r, c in PAIRS]
    (data / "nl2bash" / "all.nl").write_text("".join(r + "\n" for r, _ in pairs))
    (data / "nl2bash" / "all.cm").write_text("".join(c + "\n" for _, c in pairs))
    for i in range(60):  # pages long enough that the corpus's one validation document fills a window
        examples = "".join(f"- {r} with tool{i}:\n\n`tool{i} {c}`\n\n" for r, c in PAIRS)
        (data / "tldr" / "pages" / "common" / f"tool{i}.md").write_text(f"# tool{i}\n\n> A tool.\n\n{examples}")
    monkeypatch.setenv("TINYLLM_DATA", str(data))
    return data


@pytest.mark.slow
def test_the_device_run_rehearsed_on_the_cpu_brings_back_whole_models(tmp_path, data_dir, tiny_checkpoint, monkeypatch):
    parent = tmp_path / "parent.tlm"  # a model that stores a reviewer, as the bundled one does
    c = load_checkpoint(tiny_checkpoint)
    save_checkpoint(parent, c.model, c.tokenizer, c.meta, reviewer=c.model)
    finished = _toy_recipe(tmp_path, "toy", parent, seconds=600)
    timed = _toy_recipe(tmp_path, "toy-timed", parent, seconds=0.01, pretrain_steps=1000)
    carry, out, back = tmp_path / "carry", tmp_path / "out", tmp_path / "back"

    device_run.main(["prepare", str(carry), finished, timed])
    prepared = carry / "runs" / "toy"
    assert {p.name for p in prepared.iterdir()} >= {"val.jsonl", "tokenizer.model", "corpus.jsonl.xz"}
    assert (prepared / "tokenizer.model").read_bytes() == c.tokenizer.model_proto
    val = {json.loads(line)["command"] for line in (prepared / "val.jsonl").read_text().splitlines()}
    assert val and not any(command in (prepared / "corpus.jsonl.xz").read_bytes().decode("latin-1") for command in val)

    monkeypatch.delenv("TINYLLM_DATA")  # the device reads the data it was given, not this machine's
    device_run.main(["run", str(carry), str(out), finished, timed, "--budget", "300", "--work", str(tmp_path / "work")])
    assert len(list(out.iterdir())) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())

    models = {p.stem: p for p in device_run.join(out, back)}
    assert set(models) == {"toy", "toy-timed"}
    for name, path in models.items():
        model = load_checkpoint(path)
        assert model.meta["pretrain"]["steps"] >= 1 and model.meta["retrieval"] == {"k": 1, "adapt": True, "example_tokens": 48}
        engine = Engine.from_checkpoint(path)
        assert engine.reviews()  # the parent's reviewer, named by [export] reviewer
        # Its training pairs came back too, with the core tasks its export added to the lookup.
        assert engine.index is not None and len(engine.index.examples) > 500 + 7000
        assert engine.lookup("what is my username", 1) == ["whoami"]
    # The time budget, not the 1,000 steps, ended the timed run's pretraining, and it still finished.
    assert load_checkpoint(models["toy-timed"]).meta["pretrain"]["steps"] < 1000
    assert (back / "logs" / "toy" / "sft" / "metrics.jsonl").is_file()


def test_the_large_recipes_load_and_pretrain_on_their_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLLM_DATA", str(tmp_path))  # {data} only: no data is read, so none need be there
    for name in ("large.toml", "large-mini.toml"):
        recipe = load_recipe(Path(__file__).parents[2] / "training" / "recipes" / name)
        assert recipe["corpus"]["man"][:2] == ["1", "8"] and "text" not in recipe["pretrain"]
        assert recipe["pretrain"]["seconds"] + recipe["sft"]["seconds"] <= 8 * 60


def test_models_over_the_return_limit_come_back_without_their_reviewer(tmp_path, tiny_checkpoint, monkeypatch):
    c = load_checkpoint(tiny_checkpoint)
    run = tmp_path / "runs" / "big"
    save_checkpoint(run / "model.tlm", c.model, c.tokenizer, c.meta, reviewer=c.model)
    monkeypatch.setattr(device_run, "RETURN_BYTES", 1)
    monkeypatch.setattr(device_run, "PART_BYTES", 200_000)  # and cut into parts
    parts = device_run.pack({"big": run}, tmp_path / "out", tmp_path / "scratch")
    assert len([p for p in parts if ".part" in p.name]) > 1
    [joined] = device_run.join(tmp_path / "out", tmp_path / "back")
    back = load_checkpoint(joined)
    assert back.reviewer is None
    assert all(torch.equal(a, b.to(torch.bfloat16).float())
               for a, b in zip(back.model.state_dict().values(), c.model.state_dict().values()))
