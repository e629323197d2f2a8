"""The example index: known (request, command) pairs found by the words of a request.

The model reads the top few before it answers (the prompt format is in `engine/tokenizer.py`), and a
lookup alone is the baseline every model change must beat. Two kinds of examples:
- the training split's pairs, written by the training pipeline beside the checkpoint
  (`<model>.examples.jsonl.gz`, see `examples_path`) and loaded with it;
- the user's accepted corrections and acceptances, read from the feedback store whenever it changed
  (`PRAGMA data_version`), so one is found the moment it is accepted, before any weight update.

Ranking is Okapi BM25 over request words plus, weighted lower, command words (a request often names
the tool or a flag's meaning). Words are lower-cased and lightly stemmed. Tuned on the validation
split by the lookup's NLC2CMD and first-utility accuracy: a stop word list lowered both (BM25's idf
already discounts common words, and "all", "each" or "recursively" often pick a flag), so every word
counts; command words weigh 0.1 (0.3 and above pulled in commands that merely mention a word).
Scores are sums over precomputed per-term posting arrays, so a query costs a few numpy adds over
45k documents (`tinyllm bench index`).
"""
import gzip
import json
import re
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .atomic import write_bytes_atomic
from .checks import KnownOptions, first_program, utilities_of
from .errors import EngineError
from .tokenizer import EXAMPLE_TOKENS

K1, B = 1.2, 0.75
COMMAND_WEIGHT = 0.1  # command words count this much against request words
_WORD = re.compile(r"[a-z0-9]+(?:[._+][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Index terms of `text`: lower-case words (file names and versions kept whole), plural and
    -ing/-ed endings cut so "listing files" meets "list file"."""
    out = []
    for word in _WORD.findall(text.lower()):
        out.append(_stem(word) if len(word) > 4 and word.isalpha() else word)
    return out


def _stem(word: str) -> str:
    """A light English stemmer: files -> file, boxes -> box, directories -> directory, listing -> list."""
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


def same_words(a: str, b: str) -> bool:
    """Two requests with the same index terms, whatever their order, case or plurals ("List files by
    size." and "by size list file")."""
    return set(words(a)) == set(words(b))


def request_key(text: str) -> str:
    """Two requests that differ only in case, spacing or a final stop are the same request."""
    return " ".join(text.lower().split()).rstrip(".?! ")


@dataclass(frozen=True)
class Example:
    request: str
    command: str
    source: str = ""  # "tldr", "nl2bash", ... or "your correction #N" / "your acceptance #N"

    def to_dict(self) -> dict:
        return asdict(self)


def examples_path(checkpoint_path) -> Path:
    """Where a checkpoint's example index lives: beside it, same stem."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + ".examples.jsonl.gz")


def save_examples(path, examples: Iterable[Example]) -> Path:
    lines = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples)
    # mtime=0: the same examples give the same bytes, so a rebuilt index does not churn in git.
    write_bytes_atomic(path, gzip.compress(lines.encode(), mtime=0), mode=0o644)
    return Path(path)


def load_examples(path) -> list[Example]:
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [Example(str(d["request"]), str(d["command"]), str(d.get("source", ""))) for d in map(json.loads, f)]
    except FileNotFoundError:
        raise EngineError(f"{path}: no such example index") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise EngineError(f"{path}: example index is corrupt or truncated") from None


class _Postings:
    """BM25 term weights of one text field, as one array of (document, weight) per term."""

    def __init__(self, docs: list[list[str]], vocab: dict[str, int]):
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        self.avg_length = float(lengths.mean()) if len(docs) else 1.0
        per_term: dict[int, list[tuple[int, int]]] = {}
        for doc_id, terms in enumerate(docs):
            counts: dict[int, int] = {}
            for term in terms:
                tid = vocab.setdefault(term, len(vocab))
                counts[tid] = counts.get(tid, 0) + 1
            for tid, count in counts.items():
                per_term.setdefault(tid, []).append((doc_id, count))
        n = max(1, len(docs))
        self.terms: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.idf: dict[int, float] = {}
        for tid, postings in per_term.items():
            ids = np.array([d for d, _ in postings], dtype=np.int64)
            tf = np.array([c for _, c in postings], dtype=np.float32)
            idf = float(np.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5)))
            norm = K1 * (1 - B + B * lengths[ids] / self.avg_length)
            self.terms[tid] = (ids, (idf * tf * (K1 + 1) / (tf + norm)).astype(np.float32))
            self.idf[tid] = idf

    def add_scores(self, scores: np.ndarray, term_ids: list[int], weight: float) -> None:
        for tid in term_ids:
            if tid in self.terms:
                ids, w = self.terms[tid]
                scores[ids] += weight * w


class ExampleIndex:
    """Search known examples by request. The base examples are fixed; the user's are re-read from
    the feedback store when it changed (see `attach_feedback`)."""

    def __init__(self, examples: Sequence[Example], command_weight: float = COMMAND_WEIGHT):
        self.examples = list(examples)
        self.command_weight = command_weight
        self.vocab: dict[str, int] = {}
        self._requests = _Postings([words(e.request) for e in self.examples], self.vocab)
        self._commands = _Postings([words(e.command) for e in self.examples], self.vocab)
        self._user: list[Example] = []
        self._user_terms: list[tuple[set[str], set[str]]] = []
        self._user_by_request: dict[str, list[Example]] = {}
        self._utilities: frozenset[str] | None = None
        self._base_options: KnownOptions | None = None
        self._options: KnownOptions | None = None
        self._feedback: sqlite3.Connection | None = None
        self._feedback_path: Path | None = None
        self._feedback_version = None

    @classmethod
    def load(cls, path) -> "ExampleIndex":
        return cls(load_examples(path))

    # -- the user's examples -------------------------------------------------------------------
    def _set_user_examples(self, examples: Sequence[Example]) -> None:
        """The user's own examples, newest first: they win ties and exact-request matches."""
        self._user = list(examples)
        self._user_terms = [(set(words(e.request)), set(words(e.command))) for e in self._user]
        self._user_by_request = {}
        for e in self._user:
            self._user_by_request.setdefault(request_key(e.request), []).append(e)
        self._utilities = self._options = None

    def attach_feedback(self, db_path) -> None:
        """Follow the feedback store at `db_path`: accepted corrections and acceptances join the index
        on the next search after they are written. A missing file is read once it appears."""
        self._feedback_path = Path(db_path)
        self._feedback_version = None
        self._refresh()

    def _refresh(self) -> None:
        if self._feedback_path is None:
            return
        try:
            if self._feedback is None:
                if not self._feedback_path.is_file():
                    return
                uri = f"file:{self._feedback_path}?mode=ro"
                self._feedback = sqlite3.connect(uri, uri=True, check_same_thread=False)
            # data_version changes whenever another connection commits: one cheap read per search.
            version = self._feedback.execute("PRAGMA data_version").fetchone()[0]
            if version == self._feedback_version:
                return
            rows = self._feedback.execute(
                "SELECT 'correction', id, request, corrected FROM corrections WHERE status IN ('accepted', 'learned')"
                " UNION ALL SELECT 'acceptance', id, request, command FROM acceptances").fetchall()
        except sqlite3.Error:
            # A missing table (store not migrated yet) or an unreadable file: no user examples, retry later.
            self._close_feedback()
            return
        self._feedback_version = version
        rows.sort(key=lambda r: (r[0] != "correction", -r[1]))  # corrections first, newest first
        self._set_user_examples([Example(req, cmd, f"your {kind} #{id}") for kind, id, req, cmd in rows])

    def _close_feedback(self) -> None:
        if self._feedback is not None:
            self._feedback.close()
        self._feedback = None

    def user_matches(self, request: str) -> list[Example]:
        """The user's examples for exactly this request (after normalisation), corrections first."""
        self._refresh()
        return list(self._user_by_request.get(request_key(request), ()))

    def utilities(self) -> frozenset[str]:
        """The programs these examples run (what the candidate checks call known): every program of
        the user's commands, the first word of the base ones (parsing 45k in full costs seconds)."""
        self._refresh()
        if self._utilities is None:
            base = {first_program(e.command) for e in self.examples if e.command.strip()}
            self._utilities = frozenset(base) | utilities_of(e.command for e in self._user)
        return self._utilities

    def options(self) -> KnownOptions:
        """The long options each program of these examples (the user's included) is known to take.
        The base examples' are read once (0.2 s for 41k); a new user example adds its own."""
        self._refresh()
        if self._base_options is None:
            self._base_options = KnownOptions.of(e.command for e in self.examples)
        if self._options is None:
            self._options = self._base_options.with_commands(e.command for e in self._user)
        return self._options

    # -- search --------------------------------------------------------------------------------
    def scores(self, request: str) -> np.ndarray:
        """BM25 score of every base example for `request` (0 where no word is shared)."""
        terms = list(dict.fromkeys(words(request)))
        term_ids = [self.vocab[t] for t in terms if t in self.vocab]
        scores = np.zeros(len(self.examples), dtype=np.float32)
        self._requests.add_scores(scores, term_ids, 1.0)
        self._commands.add_scores(scores, term_ids, self.command_weight)
        return scores

    def _user_scores(self, request: str) -> list[float]:
        # A word the corpus never saw is as rare as a word can be.
        rarest = float(np.log(1 + len(self.examples)))
        idf = {term: self._requests.idf.get(self.vocab.get(term), rarest) for term in set(words(request))}
        return [sum(weight * ((term in request_terms) + self.command_weight * (term in command_terms))
                    for term, weight in idf.items())
                for request_terms, command_terms in self._user_terms]

    def search_ids(self, request: str, k: int, exclude=frozenset()) -> list[int]:
        """Ids of the `k` best base examples for `request`, best first, skipping ids in `exclude`;
        ties go to the lower id, so results are deterministic."""
        scores = self.scores(request)
        want = k + len(exclude)
        if want <= 0:
            return []
        nonzero = np.flatnonzero(scores)
        if len(nonzero) > want:
            top = nonzero[np.argpartition(-scores[nonzero], want - 1)[:want]]
            # argpartition may cut through a tie; take every id scoring at least the cut.
            cut = scores[top].min()
            top = nonzero[scores[nonzero] >= cut]
        else:
            top = nonzero
        ranked = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [i for i in ranked if i not in exclude][:k]

    def search(self, request: str, k: int) -> list[Example]:
        """The `k` best examples for `request`, best first: the user's own and the base ones together."""
        if k <= 0:
            return []
        self._refresh()
        hits = [(float(s), e) for s, e in zip(self._user_scores(request), self._user) if s > 0]
        scores = self.scores(request)
        hits += [(float(scores[i]), self.examples[i]) for i in self.search_ids(request, k)]
        hits.sort(key=lambda hit: -hit[0])  # stable: the user's examples win ties
        out, seen = [], set()
        for _, example in hits:
            key = (request_key(example.request), example.command)
            if key not in seen:
                seen.add(key)
                out.append(example)
        return out[:k]


@dataclass(frozen=True)
class RetrievalSettings:
    """How many examples a model reads, how long each may be and whether they take the request's words
    (engine/adapt.py; the lookup's commands too): stored in its checkpoint (meta "retrieval") so engine,
    training and evaluation build the same prompts. k = 0: no retrieval."""
    k: int = 0
    example_tokens: int = EXAMPLE_TOKENS
    adapt: bool = True

    @classmethod
    def from_meta(cls, meta: dict) -> "RetrievalSettings":
        fields = cls.__dataclass_fields__
        known = {key: fields[key].type(v) for key, v in (meta.get("retrieval") or {}).items() if key in fields}
        return cls(**known)
