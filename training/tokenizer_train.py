"""Train the SentencePiece tokenizer: returns the model proto bytes that engine.tokenizer loads.

Special ids match engine/tokenizer.py: <pad>=0 <unk>=1 <bos>=2 <eos>=3 <instruction>=4 <command>=5.
Byte fallback means any byte sequence encodes (no <unk> for an unseen character in a command), and the
identity normaliser without whitespace folding keeps `decode(encode(cmd)) == cmd`: shell commands are
sensitive to quoting and characters NFKC would rewrite.
"""
import io
from collections.abc import Iterable, Iterator

import sentencepiece as spm

from training.errors import TrainingError

SPECIAL_SYMBOLS = ["<instruction>", "<command>"]
# SentencePiece skips longer sentences silently; past this a line is prose we can afford to cut.
MAX_SENTENCE_CHARS = 4096


def _sentences(texts: Iterable[str], max_sentences: int) -> Iterator[str]:
    """Lines of `texts`, non-blank, at most `max_sentences` of them and MAX_SENTENCE_CHARS each."""
    count = 0
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield line[:MAX_SENTENCE_CHARS]
                count += 1
                if count >= max_sentences:
                    return


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, model_type: str = "bpe",
                    max_sentences: int = 300_000, character_coverage: float = 0.9995) -> bytes:
    """Train on a sample of `texts` (documents or single lines; each line is one training sentence,
    only the first `max_sentences` are read). model_type is "bpe" or "unigram". On a small corpus
    the vocabulary may come out smaller than `vocab_size` rather than failing."""
    if model_type not in ("bpe", "unigram"):
        raise TrainingError(f"tokenizer model type must be bpe or unigram, not {model_type!r}")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_sentences(texts, max_sentences),
            model_writer=model,
            model_type=model_type,
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            pad_piece="<pad>", unk_piece="<unk>", bos_piece="<bos>", eos_piece="<eos>",
            user_defined_symbols=SPECIAL_SYMBOLS,
            byte_fallback=True,
            character_coverage=character_coverage,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=True,
            allow_whitespace_only_pieces=True,
            max_sentence_length=MAX_SENTENCE_CHARS * 4,  # bytes, and a character is up to 4
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise TrainingError(f"tokenizer training failed: {message}") from None
    return model.getvalue()
