"""Eval metrics on hand-made cases, and `evaluate` on the nano model that memorised PAIRS."""
import json
import time

import pytest

from engine.generate import Engine
from tests.conftest import PAIRS
from training.data.records import Pair
from training.errors import TrainingError
from training.evaluate import evaluate, load_eval_pairs, predict, second_references
from training.metrics import exact_match, nlc2cmd_pair, nlc2cmd_score, top_n_exact_match, utilities


@pytest.fixture(scope="module")
def engine(tiny_model, tiny_tokenizer):
    return Engine(tiny_model, tiny_tokenizer)


def test_exact_match_collapses_whitespace_only():
    assert exact_match("ls   -la ", " ls -la")
    assert exact_match("grep  -n\terror app.log", "grep -n error app.log")
    assert not exact_match("ls -al", "ls -la")
    assert not exact_match("LS -la", "ls -la")


def test_top_n_exact_match_looks_at_every_prediction():
    assert top_n_exact_match(["ls -l", "ls -la"], "ls -la")
    assert not top_n_exact_match(["ls -l", "ls -a"], "ls -la")
    assert not top_n_exact_match([], "ls -la")


def test_utilities_and_flags_are_parsed_across_pipes_and_substitutions():
    assert utilities("tar -czf docs.tar.gz docs") == [("tar", frozenset({"-c", "-z", "-f"}))]
    assert [u for u, _ in utilities("find . -name '*.py' -exec rm -f {} \\; | wc -l && echo $(date +%s)")] == \
        ["find", "rm", "wc", "echo", "date"]
    assert utilities("find . -type f -name x")[0][1] == {"-type", "-name"}  # single-dash words stay whole
    assert utilities("sort --key=2 -n2 f 2>/dev/null") == [("sort", frozenset({"--key", "-n"}))]
    assert [u for u, _ in utilities("ls | xargs -I {} sudo -u bob rm {}")] == ["ls", "xargs", "sudo", "rm"]


def test_unparseable_quotes_fall_back_to_whitespace():
    assert [u for u, _ in utilities('echo "unterminated | wc -l')] == ["echo", "wc"]
    assert nlc2cmd_pair("grep 'oops", "grep -r foo") == pytest.approx(0.0)  # right utility, no shared flag


def test_nlc2cmd_identical_wrong_utility_and_partial_flags():
    assert nlc2cmd_pair("ls -la", "ls -la") == 1.0
    assert nlc2cmd_pair("ls -al", "ls -la") == 1.0  # flags compare as sets
    assert nlc2cmd_pair("cat notes.txt", "wc -l notes.txt") == -1.0
    assert nlc2cmd_pair("ls -l", "ls -la") == 0.5  # flag score (2*1 - 2) / 2 = 0, so (1 + 0) / 2
    assert nlc2cmd_pair("ls -a", "ls -l") == -0.5  # flag score (0 - 2) / 1 = -2: still above a wrong utility
    # Two utilities: one right with the right flags, one missing: (1 - 1) / 2.
    assert nlc2cmd_pair("ls -la", "ls -la | wc -l") == 0.0
    assert nlc2cmd_pair("", "ls") == -1.0


def test_nlc2cmd_score_is_the_best_of_the_top_n():
    assert nlc2cmd_score(["cat x", "ls -la"], "ls -la") == 1.0
    assert nlc2cmd_score(["cat x"], "ls -la") == -1.0
    assert nlc2cmd_score([], "ls -la") == -1.0


def test_memorised_pairs_score_perfectly(engine):
    pairs = [Pair(r, c, "test") for r, c in PAIRS]
    result = evaluate(engine, pairs, n=1, batch_size=4)
    assert (result.exact_match, result.top_n_exact_match, result.nlc2cmd, result.n) == (1.0, 1.0, 1.0, len(PAIRS))
    assert [p[0] for p in result.predictions] == [c for _, c in PAIRS]


def test_top_n_keeps_the_memorised_command(engine, monkeypatch):
    monkeypatch.setattr(engine.options, "checks", False)  # the nano model's second guesses need not be commands
    result = evaluate(engine, [Pair(r, c, "test") for r, c in PAIRS], n=2, batch_size=4)
    assert result.top_n_exact_match == 1.0 and all(len(p) == 2 for p in result.predictions)


def test_predictions_come_back_in_input_order_and_dicts_are_accepted(engine):
    # Longest request first: the batches are sorted by length, the result must not be.
    shuffled = sorted(PAIRS, key=lambda pair: -len(pair[0]))
    result = evaluate(engine, [{"instruction": r, "command": c} for r, c in shuffled], batch_size=3)
    assert [p[0] for p in result.predictions] == [c for _, c in shuffled]
    with pytest.raises(TrainingError):
        evaluate(engine, [{"instruction": "x"}])
    with pytest.raises(TrainingError):
        evaluate(engine, [])


def test_bad_lines_are_skipped_and_empty_files_are_errors(tmp_path):
    data = tmp_path / "eval.jsonl"
    data.write_text('{"instruction": "list files", "command": "ls -la"}\nnot json\n{"instruction": 3}\n'
                    '{"instruction": "show disk usage", "command": "df -h"}\n')
    pairs, skipped = load_eval_pairs(data)
    assert [p.command for p in pairs] == ["ls -la", "df -h"] and skipped == 2
    assert load_eval_pairs(data, limit=1)[0] == pairs[:1]
    (tmp_path / "empty.jsonl").write_text("")
    for path in (tmp_path / "empty.jsonl", tmp_path / "missing.jsonl"):
        with pytest.raises(TrainingError):
            load_eval_pairs(path)


def test_600_examples_take_seconds(engine):
    requests = [r for r, _ in PAIRS] * 60
    started = time.perf_counter()
    predictions = predict(engine, requests, n=1, batch_size=32)
    seconds = time.perf_counter() - started
    print(f"\n600 examples, nano model, batch 32: {seconds:.2f} s")
    assert [p[0] for p in predictions[:len(PAIRS)]] == [c for _, c in PAIRS]
    assert seconds < 120  # a sanity bound for a loaded 2-core machine, not a benchmark


def test_checks_effect_counts_what_the_checks_drop_and_top1_before_and_after():
    from types import SimpleNamespace

    from training.evaluate import checks_effect

    pairs = [{"instruction": "list files", "command": "ls -la"}, {"instruction": "frob", "command": "parar"}]
    effect = checks_effect(SimpleNamespace(known_utilities=frozenset), pairs, [["parar -x", "ls -la"], ["parar", "ls |"]])
    assert effect == {"candidates": 4, "dropped": 3, "requests_left_empty": 1, "top1_changed": 2,
                      "exact_match_before": 0.5, "exact_match_after": 0.5}


def test_a_second_reference_counts_as_right(engine, tmp_path):
    """The everyday set gives `command2` where two ways are common: `ls -la` is right for 'list files'
    whose first reference is `ls`."""
    data = tmp_path / "everyday.jsonl"
    data.write_text("".join(json.dumps({"instruction": r, "command": "echo other", "command2": c}) + "\n" for r, c in PAIRS))
    pairs, _ = load_eval_pairs(data)
    assert evaluate(engine, pairs, batch_size=4).exact_match == 0.0
    both = evaluate(engine, pairs, batch_size=4, second=second_references(data))
    assert (both.exact_match, both.nlc2cmd, both.first_utility) == (1.0, 1.0, 1.0)
