"""The SentencePiece tokenizer and the one prompt format every part of tinyllm uses.

    <bos>[<instruction> {example request} <command> {example command}<eos>]* <instruction> {request} <command> {command}<eos>

Retrieved examples come first, the most relevant last (nearest the request); a prompt with none is the
plain format older checkpoints were trained on. The special tokens are single ids (fixed below); byte
fallback makes any text encodable.
"""
import re
import unicodedata

import sentencepiece as spm

from .errors import EngineError
from .model import IGNORE_INDEX  # the label the model's loss skips: prompt tokens get it

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
INSTRUCTION, COMMAND = "<instruction>", "<command>"
SPECIAL_IDS = {PAD: 0, UNK: 1, BOS: 2, EOS: 3, INSTRUCTION: 4, COMMAND: 5}
# Requests longer than this many characters are cut before tokenizing; the context cuts further.
MAX_REQUEST_CHARS = 4096
# A retrieved example longer than this many tokens is left out of the prompt (checkpoints store theirs).
EXAMPLE_TOKENS = 48

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters that print as nothing (soft hyphen, zero-width spaces and joiners, direction marks, BOM):
# pasted from the web into a command, they make an argument no one can see (`tar xf \u00ad-`).
INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")


def clean_text(text: str | bytes) -> str:
    """Decode bytes leniently, drop control and invisible characters, collapse whitespace to single spaces."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    text = _CONTROL.sub(" ", text.replace("\ufffd", " "))
    return _SPACE.sub(" ", text).strip()


def normalize_request(text: str | bytes) -> str:
    request = clean_text(text)
    if not request:
        raise EngineError("empty request: describe what the command should do")
    return request


class Tokenizer:
    def __init__(self, processor: spm.SentencePieceProcessor, model_proto: bytes):
        self.sp = processor
        self.model_proto = model_proto
        for piece, expected in SPECIAL_IDS.items():
            if self.sp.piece_to_id(piece) != expected:
                raise EngineError(f"tokenizer does not map {piece} to id {expected}; retrain it with tinyllm")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (SPECIAL_IDS[t] for t in (PAD, UNK, BOS, EOS))
        self.instruction_id, self.command_id = SPECIAL_IDS[INSTRUCTION], SPECIAL_IDS[COMMAND]
        self.vocab_size = self.sp.get_piece_size()

    @classmethod
    def from_bytes(cls, model_proto: bytes) -> "Tokenizer":
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except Exception as e:  # sentencepiece raises bare RuntimeError/OSError
            raise EngineError(f"not a SentencePiece model ({e.__class__.__name__})") from None
        return cls(processor, bytes(model_proto))

    @classmethod
    def from_file(cls, path) -> "Tokenizer":
        with open(path, "rb") as f:
            return cls.from_bytes(f.read())

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) >= len(SPECIAL_IDS)])

    def encode_example(self, request: str, command: str) -> list[int]:
        """One retrieved example as the prompt shows it."""
        return [self.instruction_id, *self.encode(request), self.command_id, *self.encode(command), self.eos_id]

    def encode_prompt(self, request: str, examples=(), room: int | None = None,
                      example_tokens: int = EXAMPLE_TOKENS) -> list[int]:
        """The prompt for `request` with `examples` (objects with .request and .command, best first).

        An example longer than `example_tokens` is left out rather than cut; with `room`, the request
        keeps its last tokens and the examples farthest from it are dropped until the prompt fits."""
        body = self.encode(request)
        if room is not None and len(body) + self.prompt_overhead > room:
            body = body[len(body) + self.prompt_overhead - room:]
        shown: list[list[int]] = []  # farthest first
        for example in examples:
            ids = self.encode_example(example.request, example.command)
            if len(ids) > example_tokens:
                continue
            if room is not None and len(self._layout([ids, *shown], body)) > room:
                break
            shown.insert(0, ids)
        return self._layout(shown, body)

    def _layout(self, examples: list[list[int]], body: list[int]) -> list[int]:
        """The prompt format (see the top of this file) around encoded examples and request."""
        return [self.bos_id, *(i for ids in examples for i in ids), self.instruction_id, *body, self.command_id]

    @property
    def prompt_overhead(self) -> int:
        """The tokens the format adds around a request shown without examples."""
        return len(self._layout([], []))

    def encode_pair(self, request: str, command: str, examples=(),
                    example_tokens: int = EXAMPLE_TOKENS) -> tuple[list[int], list[int]]:
        """Token ids of a whole example and its labels: loss only on the command and <eos>."""
        prompt = self.encode_prompt(request, examples, example_tokens=example_tokens)
        answer = [*self.encode(command), self.eos_id]
        return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer

    def newline_ids(self) -> list[int]:
        """Ids whose text holds a line break: generation stops on them (a command is one line)."""
        ids = []
        for i in range(self.vocab_size):
            piece = self.sp.id_to_piece(i)
            if "\n" in piece or piece == "<0x0A>" or piece == "<0x0D>":
                ids.append(i)
        return ids
