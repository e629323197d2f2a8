import pytest
import sentencepiece as spm

from training.errors import TrainingError
from training.tokenizer_train import train_tokenizer

CORPUS = [
    "list all files in the current directory", "ls -la",
    "find python files modified today", "find . -name '*.py' -mtime 0",
    "show disk usage of this folder", "du -sh .",
    "count lines in a file", "wc -l {{path/to/file}}",
    "search for a pattern recursively", 'grep -rn "pattern" .',
] * 20


@pytest.fixture(scope="module")
def proto():
    return train_tokenizer(CORPUS, vocab_size=400)


def test_special_ids(proto):
    sp = spm.SentencePieceProcessor(model_proto=proto)
    assert [sp.id_to_piece(i) for i in range(6)] == ["<pad>", "<unk>", "<bos>", "<eos>", "<instruction>", "<command>"]
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2, 3)
    ids = sp.encode("<instruction>list<command>")
    assert 4 in ids and 5 in ids


def test_commands_round_trip_with_byte_fallback(proto):
    sp = spm.SentencePieceProcessor(model_proto=proto)
    for text in ["find . -name '*.py'  |  xargs grep -n \"é€\"", "echo $((1+2)) > ~/out\ttab"]:
        ids = sp.encode(text)
        assert sp.unk_id() not in ids and sp.decode(ids) == text


def test_options_and_limits():
    sp = spm.SentencePieceProcessor(model_proto=train_tokenizer(CORPUS, vocab_size=350, model_type="unigram"))
    assert sp.get_piece_size() <= 350
    with pytest.raises(TrainingError, match="bpe or unigram"):
        train_tokenizer(CORPUS, model_type="word")
    with pytest.raises(TrainingError, match="tokenizer training failed"):
        train_tokenizer(CORPUS, vocab_size=10)
