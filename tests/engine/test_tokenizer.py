import pytest

from engine.errors import EngineError
from engine.model import IGNORE_INDEX
from engine.tokenizer import SPECIAL_IDS, Tokenizer, normalize_request


def test_special_tokens_are_single_ids(tiny_tokenizer):
    for piece, expected in SPECIAL_IDS.items():
        assert tiny_tokenizer.sp.piece_to_id(piece) == expected
    assert 4 in tiny_tokenizer.encode("<instruction>") and 5 in tiny_tokenizer.encode("x <command> y")


def test_round_trip_including_unseen_characters(tiny_tokenizer):
    for text in ["ls -la", "find . -name '*.py' | xargs wc -l", "echo 'ü€ 日本' > ✓.txt"]:
        assert tiny_tokenizer.decode(tiny_tokenizer.encode(text)) == text


def test_prompt_format(tiny_tokenizer):
    ids = tiny_tokenizer.encode_prompt("list files")
    assert ids[:2] == [2, 4] and ids[-1] == 5
    assert len(ids) == len(tiny_tokenizer.encode("list files")) + tiny_tokenizer.prompt_overhead
    assert tiny_tokenizer.prompt_overhead == 3  # <bos>, <instruction>, <command>
    pair, labels = tiny_tokenizer.encode_pair("list files", "ls -la")
    assert pair[: len(ids)] == ids and pair[-1] == 3
    assert labels[: len(ids)] == [IGNORE_INDEX] * len(ids)
    assert labels[len(ids):] == pair[len(ids):]


def test_foreign_bytes_are_a_clear_error():
    with pytest.raises(EngineError, match="SentencePiece"):
        Tokenizer.from_bytes(b"\x00garbage")


@pytest.mark.parametrize("junk", ["", "   ", "\x00\x01\t\n", b"\xff\xfe"])
def test_empty_requests_are_refused(junk):
    with pytest.raises(EngineError, match="empty request"):
        normalize_request(junk)


def test_control_characters_and_bad_utf8_are_cleaned():
    assert normalize_request("list\x1b[31m   files\n") == "list [31m files"
    assert normalize_request(b"list \xff files") == "list files"
    assert normalize_request("list\u200b fi\u00adles\ufeff") == "list files"  # invisible: gone, not a space


def test_prompt_with_examples_puts_the_most_relevant_nearest_the_request(tiny_tokenizer):
    from engine.examples import Example

    best, second = Example("list files", "ls -la"), Example("show disk usage", "df -h")
    tok = tiny_tokenizer
    ids = tok.encode_prompt("count lines", [best, second])
    assert ids == [tok.bos_id, *tok.encode_example("show disk usage", "df -h"),
                   *tok.encode_example("list files", "ls -la"), *tok.encode_prompt("count lines")[1:]]
    assert tok.decode(ids) == tok.decode(tok.encode("show disk usage") + tok.encode("df -h") + tok.encode("list files")
                                         + tok.encode("ls -la") + tok.encode("count lines"))
    # An example over the per-example budget is left out, not cut.
    assert tok.encode_prompt("count lines", [best], example_tokens=3) == tok.encode_prompt("count lines")
    # Without room for every example, the farthest goes first; the request keeps its last tokens.
    room = len(tok.encode_prompt("count lines", [best]))
    assert tok.encode_prompt("count lines", [best, second], room=room) == tok.encode_prompt("count lines", [best])
    cut = tok.encode_prompt("count lines " * 50, [best], room=20)
    assert len(cut) == 20  # the request filled the room; no example fits
    assert cut[:2] == [tok.bos_id, tok.instruction_id] and cut[-1] == tok.command_id


def test_encode_pair_masks_everything_but_the_answer(tiny_tokenizer):
    from engine.examples import Example

    tok = tiny_tokenizer
    ids, labels = tok.encode_pair("count lines", "wc -l", [Example("list files", "ls -la")])
    answer = [*tok.encode("wc -l"), tok.eos_id]
    assert ids[-len(answer):] == answer and labels[-len(answer):] == answer
    assert set(labels[:-len(answer)]) == {IGNORE_INDEX}
