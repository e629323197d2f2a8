import random

from training.data.records import Pair
from training.data.split import command_key, dedup, request_key, split_pairs


def _corpus(n=600, seed=0):
    """Pairs that share requests and commands across each other, as real corpora do."""
    rng = random.Random(seed)
    commands = [f"cmd{i} --flag {i % 7}" for i in range(n // 3)]
    requests = [f"Do task {i}." for i in range(n // 2)]
    return [Pair(rng.choice(requests), rng.choice(commands), "test") for _ in range(n)]


def test_dedup_exact_pairs_keeps_first():
    pairs = [Pair("List files.", "ls  -l", "a"), Pair("list files", "ls -l", "b"), Pair("List files.", "ls", "a")]
    assert dedup(pairs) == [pairs[0], pairs[2]]


def test_split_has_no_shared_request_or_command():
    split = split_pairs(_corpus(), val_fraction=0.2)
    assert split.val and split.train
    train_requests = {request_key(p.instruction) for p in split.train}
    train_commands = {command_key(p.command) for p in split.train}
    assert not any(request_key(p.instruction) in train_requests for p in split.val)
    assert not any(command_key(p.command) in train_commands for p in split.val)
    assert len(split.train) + len(split.val) + split.dropped == len(dedup(_corpus()))


def test_split_is_deterministic_and_order_independent():
    pairs = _corpus()
    first = split_pairs(pairs, val_fraction=0.2)
    shuffled = split_pairs(random.Random(1).sample(pairs, len(pairs)), val_fraction=0.2)
    assert set(first.val) == set(shuffled.val) and set(first.train) == set(shuffled.train)
    assert set(split_pairs(pairs, val_fraction=0.2, seed="other").val) != set(first.val)


def test_split_fraction_is_roughly_kept():
    pairs = [Pair(f"request {i}", f"command {i}", "test") for i in range(2000)]
    split = split_pairs(pairs, val_fraction=0.1)
    assert 150 < len(split.val) < 250 and split.dropped == 0


def test_generic_request_stays_in_training():
    # "Display help" with many commands: losing the lone validation pair beats losing the training ones.
    pairs = [Pair("Display help", f"tool{i} --help", "tldr", f"tool{i}") for i in range(200)]
    split = split_pairs(pairs, val_fraction=0.05)
    assert split.val == [] and len(split.train) + split.dropped == 200 and len(split.train) > 150
