"""Request augmentation: the same pair asked the ways people type it.

Variants of a request: as written; first letter lower-cased; all lower-case; with and without a final
period; a short form (no parenthetical remarks, no articles, no backticks). For pairs that carry a topic
(tldr: the page's command, which nine in ten tldr descriptions do not name) also the forms that name it:
"query library with beet", "query library using beet", "beet query library". Only the command stays
fixed, so the model learns many phrasings of one request map to one command.

Augment the training side only, after `split.split_pairs`: validation keeps the corpus's own wording.
"""
import random
import re
from collections.abc import Iterable, Iterator

from training.data.records import Pair

_PARENTHETICAL = re.compile(r"\s*\([^()]*\)")
_ARTICLES = re.compile(r"\b(?:a|an|the)\s+", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _lower_first(text: str) -> str:
    # "Create a file" -> "create a file", but "PDF files" and "IP address" keep their capitals.
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def _without_period(text: str) -> str:
    return text.rstrip().rstrip(".").rstrip()


def short_form(text: str) -> str:
    """`text` telegraph style: parenthetical remarks, articles and backticks removed, no final period."""
    text = _PARENTHETICAL.sub("", text).replace("`", "")
    text = _ARTICLES.sub("", text)
    return _without_period(_SPACES.sub(" ", text).strip())


def _names(text: str, topic: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(topic)}(?![\w-])", text, re.IGNORECASE) is not None


def request_variants(pair: Pair) -> list[str]:
    """Distinct requests for `pair`, the original first."""
    request = pair.instruction.strip()
    plain = _without_period(_lower_first(request))
    variants = [
        request,
        _lower_first(request),
        request.lower(),
        _without_period(request) if request.endswith(".") else request + ".",
        plain,
        short_form(_lower_first(request)),
    ]
    topic = pair.topic.strip()
    if topic and not _names(request, topic):
        variants += [f"{plain} with {topic}", f"{plain} using {topic}", f"{topic} {plain}",
                     f"{topic} {short_form(plain)}"]
    return list(dict.fromkeys(v for v in variants if v))


def _sample(pair: Pair, variants: list[str], k: int, rng: random.Random) -> list[str]:
    """`k` of `variants`, at least half of them naming the topic when the pair has one: those are the
    requests tldr lacks, the others only vary case and punctuation."""
    named = [v for v in variants if pair.topic and _names(v, pair.topic)]
    rest = [v for v in variants if v not in named]
    take_named = min(len(named), max(k - len(rest), (k + 1) // 2))
    return rng.sample(named, take_named) + rng.sample(rest, k - take_named)


def augment_pairs(pairs: Iterable[Pair], max_variants: int | None = 4, seed: int = 0) -> Iterator[Pair]:
    """Each pair as written, then up to `max_variants - 1` other requests for it, sampled
    deterministically per pair (same seed and pair -> same variants). `max_variants=None` keeps all."""
    for pair in pairs:
        original, *others = request_variants(pair)
        yield pair
        if max_variants is not None and len(others) > max_variants - 1:
            others = _sample(pair, others, max_variants - 1, random.Random(f"{seed}\0{pair}"))
        for request in others:
            yield Pair(request, pair.command, pair.source, pair.topic)
