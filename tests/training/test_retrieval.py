"""Training prompts' retrieved examples, and the filled-placeholder variants that teach arguments."""
import random

import pytest

from engine.examples import Example, ExampleIndex
from training.data.placeholders import fill_placeholders, value_for
from training.data.records import Pair
from training.pipeline import PairData, training_examples
from training.retrieval import index_examples, training_neighbours

PAIRS = [
    Pair("Extract an archive", "tar xf {{path/to/source.tar}}", "tldr", "tar"),
    Pair("Extract an archive verbosely", "tar xvf {{path/to/source.tar}}", "tldr", "tar"),
    Pair("Create an archive from a directory", "tar cf {{path/to/target.tar}} {{path/to/directory}}", "tldr", "tar"),
    Pair("unpack the archive foo.tar", "tar xf foo.tar", "nl2bash"),
    Pair("extract the archive bar.tar", "tar xf foo.tar", "nl2bash"),  # the same command as the one above
    Pair("List files", "ls {{[-l|--long]}}", "tldr", "ls"),
    Pair("Show disk usage", "df -h", "tldr", "df"),
    Pair("Connect as a user to a port", "ssh {{username}}@{{host}} -p {{port}}", "tldr", "ssh"),
]


def test_training_neighbours_never_include_the_example_itself():
    index = ExampleIndex(index_examples(PAIRS))
    examples, origins = training_examples(PAIRS, PairData(augment=4, placeholders=True))
    for copy_rate in (0.0, 1.0):
        neighbours = training_neighbours(index, examples, origins, k=3, copy_rate=copy_rate, seed=0)
        assert len(neighbours) == len(examples)
        for origin, shown in zip(origins, neighbours):
            assert len(shown) <= 3
            assert index.examples[origin] not in shown


def test_same_command_neighbours_only_as_the_nearest_copy():
    index = ExampleIndex(index_examples(PAIRS))
    examples, origins = PAIRS[3:5] * 50, [3, 4] * 50
    never = training_neighbours(index, examples, origins, k=3, copy_rate=0.0, adapted=False, seed=0)
    assert all(e.command != "tar xf foo.tar" for shown in never for e in shown)
    always = training_neighbours(index, examples, origins, k=3, copy_rate=1.0, adapted=False, seed=0)
    with_examples = [shown for shown in always if shown]
    assert with_examples and all(shown[0].command == "tar xf foo.tar" for shown in with_examples)
    assert all(e.command != "tar xf foo.tar" for shown in with_examples for e in shown[1:])


def test_training_neighbours_take_the_examples_words_as_the_engine_does():
    index = ExampleIndex(index_examples(PAIRS))
    # "extract the archive bar.tar" is shown its twin "unpack the archive foo.tar" with bar.tar put in
    shown = training_neighbours(index, [PAIRS[4]] * 20, [4] * 20, k=3, copy_rate=1.0, seed=0)
    firsts = {found[0] for found in shown if found}
    assert firsts == {Example("unpack the archive bar.tar", "tar xf bar.tar", "nl2bash")}


def test_filled_placeholders_name_their_values_in_the_request():
    rng = random.Random(0)
    pair = fill_placeholders(PAIRS[7], rng)
    assert "{{" not in pair.command
    user, rest = pair.command.split(" ", 1)[1].split("@")
    host, port = rest.split(" -p ")
    for value in (user, host, port):
        assert value in pair.instruction
    assert pair.instruction.startswith("Connect as a user to a port")
    # Option spellings take their first form; a command with only those gets no variant.
    assert fill_placeholders(PAIRS[5], rng) is None
    assert fill_placeholders(Pair("Run it", "run {{something_odd}}", "tldr"), rng) is None
    assert value_for("path/to/source.tar", rng).endswith(".tar")
    assert value_for("path/to/directory", rng).isalpha()
    assert value_for("100", rng).isdigit() and value_for("100", rng) != "100"


def test_training_examples_keep_the_original_and_add_a_filled_variant():
    examples, origins = training_examples(PAIRS[:1], PairData(augment=2, placeholders=True))
    assert examples[0] == PAIRS[0] and origins == [0] * len(examples)
    assert examples[-1].command.startswith("tar xf ") and "{{" not in examples[-1].command
    assert len(training_examples(PAIRS[:1], PairData(augment=2))[0]) == len(examples) - 1


def test_sft_with_retrieval_writes_the_index_and_k_beside_the_checkpoint(tiny_tokenizer, tmp_path):
    import json

    from engine.examples import examples_path, load_examples
    from engine.generate import Engine
    from tests.conftest import PAIRS as TEST_PAIRS
    from training.pipeline import ModelChoice, RetrievalChoice, run_sft
    from training.run_dir import RunDir
    from training.config import TrainConfig

    data = tmp_path / "pairs.jsonl"
    rows = [(r, c) for r, c in TEST_PAIRS] + [(f"please {r}", f"{c} # {i}") for i, (r, c) in enumerate(TEST_PAIRS)]
    data.write_text("".join(json.dumps({"instruction": r, "command": c}) + "\n" for r, c in rows))
    tokenizer = tmp_path / "tok.model"
    tokenizer.write_bytes(tiny_tokenizer.model_proto)
    run = RunDir(tmp_path / "run")
    config = TrainConfig(steps=2, batch_size=4, eval_every=100, eval_samples=2, checkpoint_every=100, bf16=False,
                         progress=False)
    checkpoint = run_sft(run, config, ModelChoice(preset="nano", tokenizer=str(tokenizer), context=128),
                         PairData(sources=[f"jsonl:{data}"], val_fraction=0.2, augment=0),
                         retrieval=RetrievalChoice(k=2, example_tokens=64))
    examples = load_examples(examples_path(checkpoint))
    assert examples and all(e.command in {c for _, c in rows} for e in examples)
    engine = Engine.from_checkpoint(checkpoint)
    assert (engine.retrieval.k, engine.retrieval.example_tokens) == (2, 64)
    assert len(engine.index.examples) == len(examples) and engine.neighbours("list files")


def test_a_reviewer_trains_on_the_pairs_read_backwards_with_the_same_split(tiny_tokenizer, tmp_path):
    import json

    from engine.checkpoint import read_meta
    from tests.conftest import PAIRS as TEST_PAIRS
    from training.config import TrainConfig
    from training.errors import TrainingError
    from training.pipeline import ModelChoice, RetrievalChoice, read_split, run_sft
    from training.run_dir import RunDir

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"instruction": r, "command": c}) + "\n" for r, c in TEST_PAIRS))
    tokenizer = tmp_path / "tok.model"
    tokenizer.write_bytes(tiny_tokenizer.model_proto)
    config = TrainConfig(steps=2, batch_size=4, eval_every=100, eval_samples=2, checkpoint_every=100, bf16=False,
                         progress=False)
    choice = ModelChoice(preset="nano", tokenizer=str(tokenizer), context=128)
    pairs = PairData(sources=[f"jsonl:{data}"], val_fraction=0.3, augment=0, reverse=True)
    checkpoint = run_sft(RunDir(tmp_path / "run"), config, choice, pairs)
    _, val = read_split(pairs)
    held_out = read_meta(checkpoint)["base_eval_set"]  # a sample of the validation pairs, as trained
    assert held_out and {(p["instruction"], p["command"]) for p in held_out} <= {(p.command, p.instruction) for p in val}
    with pytest.raises(TrainingError, match="retrieved examples"):
        run_sft(RunDir(tmp_path / "run2"), config, choice, pairs, retrieval=RetrievalChoice(k=2))


def test_an_index_extended_with_other_pairs_keeps_out_every_validation_request_and_command(tmp_path):
    from engine.examples import examples_path, load_examples, save_examples
    from training.retrieval import extend_index

    model = tmp_path / "m.tlm"
    save_examples(examples_path(model), [Example("list files", "ls -la", "tldr")])
    val = [Pair("show disk usage", "df -h", "val")]
    extra = [Pair("make a directory called build", "mkdir build", "core"), Pair("how full is the disk", "df -h", "core"),
             Pair("show disk usage", "du -sh .", "core"), Pair("list files", "ls -la", "core")]
    assert extend_index(model, extra, val) == 1
    assert [(e.request, e.command) for e in load_examples(examples_path(model))] == [
        ("list files", "ls -la"), ("make a directory called build", "mkdir build")]
