"""`tinyllm eval` end to end, in a subprocess as a user runs it."""
import json

from tests.conftest import PAIRS
from tests.tui.test_cli import tinyllm


def write_pairs(path, pairs, extra_lines=()):
    lines = [json.dumps({"instruction": r, "command": c}) for r, c in pairs]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n")
    return path


def test_eval_json_and_out_in_input_order(tiny_checkpoint, tinyllm_home, tmp_path):
    # Longest request first, so sorting by length for batching really reorders them.
    pairs = sorted(PAIRS, key=lambda pair: -len(pair[0]))
    data = write_pairs(tmp_path / "eval.jsonl", pairs, ["not json", '{"instruction": "no command"}'])
    out = tmp_path / "pred.jsonl"
    result = tinyllm("eval", "--data", str(data), "--model", str(tiny_checkpoint), "--json", "--out", str(out),
                     "--batch-size", "3", home=tinyllm_home)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert {"exact_match", "top_n_exact_match", "nlc2cmd", "n"} <= set(scores)
    assert (scores["exact_match"], scores["nlc2cmd"], scores["n"], scores["skipped"]) == (1.0, 1.0, len(PAIRS), 2)
    assert "skipped 2 malformed lines" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["instruction"], row["command"]) for row in rows] == pairs
    assert [row["predictions"][0] for row in rows] == [c for _, c in pairs]


def test_eval_limit_and_text_output(tiny_checkpoint, tinyllm_home, tmp_path):
    data = write_pairs(tmp_path / "eval.jsonl", PAIRS)
    result = tinyllm("eval", "--data", str(data), "--model", str(tiny_checkpoint), "--limit", "3", "-n", "2",
                     "--no-progress", home=tinyllm_home)
    assert result.returncode == 0, result.stderr
    assert "examples            3" in result.stdout and "top-2 exact match" in result.stdout


def test_eval_bad_data_is_a_one_line_error(tiny_checkpoint, tinyllm_home, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    for path in (tmp_path / "empty.jsonl", tmp_path / "missing.jsonl"):
        result = tinyllm("eval", "--data", str(path), "--model", str(tiny_checkpoint), home=tinyllm_home)
        assert result.returncode == 2 and result.stderr.startswith("tinyllm: ")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_eval_uses_the_model_index_and_scores_the_lookup_alone(tiny_checkpoint, tinyllm_home, tmp_path):
    from engine.checkpoint import load_checkpoint, save_checkpoint
    from engine.examples import Example, examples_path, save_examples

    checkpoint = load_checkpoint(tiny_checkpoint)
    model = save_checkpoint(tmp_path / "r.tlm", checkpoint.model, checkpoint.tokenizer,
                            {**checkpoint.meta, "retrieval": {"k": 2, "example_tokens": 120}})
    # The index knows a near twin of each request (another wording, the same command).
    save_examples(examples_path(model), [Example(f"please {r} now", c, "test") for r, c in PAIRS])
    data = write_pairs(tmp_path / "eval.jsonl", PAIRS)

    def scores(*flags):
        result = tinyllm("eval", "--data", str(data), "--model", str(model), "--json", *flags, home=tinyllm_home)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    lookup = scores("--lookup")
    assert lookup["lookup"] and lookup["exact_match"] == 1.0 and lookup["first_utility"] == 1.0
    plain = scores("--no-retrieval")
    assert plain["retrieval_k"] == 0 and plain["exact_match"] == 1.0  # what the tiny model memorised
    assert scores()["retrieval_k"] == 2 and scores("-k", "1")["retrieval_k"] == 1
    result = tinyllm("eval", "--data", str(data), "--model", str(tiny_checkpoint), "--lookup", home=tinyllm_home)
    assert result.returncode == 2 and "no example index" in result.stderr


def test_eval_ranks_with_the_models_reviewer_unless_told_not_to(tiny_checkpoint, tinyllm_home, tmp_path):
    from tests.conftest import model_copy

    model = model_copy(tiny_checkpoint, tmp_path, reviewer=True)
    data = write_pairs(tmp_path / "eval.jsonl", PAIRS)
    decoded = {}
    for flags in ([], ["--no-review"]):
        result = tinyllm("eval", "--data", str(data), "--model", str(model), "-n", "3", "--json", *flags,
                         home=tinyllm_home)
        assert result.returncode == 0, result.stderr
        decoded[bool(flags)] = json.loads(result.stdout)["decode"]
    assert (decoded[False]["review"], decoded[False]["beam"]) == (True, 10)  # every beam of the reviewed width
    assert (decoded[True]["review"], decoded[True]["beam"]) == (False, 3)
