"""Recipes end to end on tiny data: phases in their own runs, and the exported model's reviewer."""
import json

import pytest

from engine.checkpoint import load_checkpoint
from engine.generate import Engine
from tests.conftest import PAIRS
from training.errors import TrainingError
from training.recipe import run_recipe

LOOP = "steps = 2\nbatch_size = 4\neval_every = 100\neval_samples = 2\ncheckpoint_every = 100\nbf16 = false\nprogress = false\n"


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    """base.toml trains a nano model and its tokenizer; rev.toml reads its pairs backwards from it;
    other.toml trains a model of its own tokenizer (from other text)."""
    monkeypatch.setenv("TINYLLM_DATA", str(tmp_path))  # recipes may name {data}; these name their files
    pairs, other = tmp_path / "pairs.jsonl", tmp_path / "other.jsonl"
    pairs.write_text("".join(json.dumps({"instruction": r, "command": c}) + "\n" for r, c in PAIRS * 3))
    other.write_text("".join(json.dumps({"instruction": f"please {r} now", "command": f"{c} --all"}) + "\n"
                             for r, c in PAIRS * 3))

    def write(name: str, model: str, data, extra: str = "", export: str = ""):
        sft = f'data = ["jsonl:{data}"]\nval_fraction = 0.2\naugment = 0\n{extra}{LOOP}'
        (tmp_path / name).write_text(f'name = "{name[:-5]}"\n[model]\n{model}\n[sft]\n{sft}\n[export]\ndtype = "float32"\n{export}')
        return tmp_path / name

    own_tokenizer = 'preset = "nano"\nvocab_size = 400\ncontext = 128'
    write("base.toml", own_tokenizer, pairs)
    write("rev.toml", 'init_recipe = "base.toml"', pairs, "reverse = true\n")
    write("other.toml", own_tokenizer, other)
    return write, pairs


def test_a_recipe_exports_its_model_with_the_reviewer_its_export_names(recipes, tmp_path):
    write, pairs = recipes
    model = run_recipe(write("model.toml", 'init_recipe = "base.toml"', pairs, export='reviewer = "rev.toml"'))
    exported, reviewer = load_checkpoint(model), load_checkpoint(model.parent.parent / "recipe-rev" / "model.tlm")
    assert exported.reviewer is not None and exported.meta["recipe"] == "model.toml"
    assert all((a == b).all() for a, b in zip(exported.reviewer.state_dict().values(), reviewer.model.state_dict().values()))
    assert Engine.from_checkpoint(model).reviews()
    assert run_recipe(tmp_path / "model.toml") == model  # finished: not rerun
    plain = run_recipe(write("plain.toml", 'init_recipe = "base.toml"', pairs))
    assert load_checkpoint(plain).reviewer is None and not Engine.from_checkpoint(plain).reviews()


def test_a_reviewer_of_another_tokenizer_is_a_one_line_error(recipes):
    write, pairs = recipes
    with pytest.raises(TrainingError, match=r"mismatch.toml: \[export\] reviewer: .*must use its model's tokenizer"):
        run_recipe(write("mismatch.toml", 'init_recipe = "base.toml"', pairs, export='reviewer = "other.toml"'))
    with pytest.raises(TrainingError, match=r"unknown keys in \[export\]: reviwer"):
        run_recipe(write("typo.toml", 'init_recipe = "base.toml"', pairs, export='reviwer = "rev.toml"'))
