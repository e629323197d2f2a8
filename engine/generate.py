"""Turning a request into commands: prefill the prompt once, then decode token by token from a KV cache.

`beam_search` is the one decoding loop for suggestions and evaluation: it runs a batch of requests
(left-padded, so one cache serves all) with `width` beams each, and yields the best-first candidates
after every step, which is what the app streams. Width 1 is greedy decoding. `stream` samples one
command (temperature / top-k / top-p) and yields its text as it grows.
"""
import copy
import itertools
import logging
import math
import time
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import torch

from .adapt import adapt_all
from .checkpoint import load_checkpoint
from .checks import KnownOptions, check_candidates, doubtful_last, first_of_each, first_program, runs_missing_program
from .cpu import inference_dtype
from .errors import EngineError
from .examples import Example, ExampleIndex, RetrievalSettings, examples_path, same_words
from .model import GPT, IGNORE_INDEX
from .review import MISSING_PROGRAM_COST, WEIGHT, Reviewer, summed_logprobs
from .tokenizer import MAX_REQUEST_CHARS, Tokenizer, clean_text, normalize_request

log = logging.getLogger("tinyllm.engine")


MODEL_SOURCE = "model"
INCOMPLETE_CHAR = "\ufffd"  # what decoding shows for the first bytes of a multi-byte character


@dataclass
class Candidate:
    command: str
    score: float | None  # the model's log-probability per token^alpha (length-normalised); None: not the model's
    source: str = MODEL_SOURCE  # "model", "example" (the lookup's), "your correction #N"
    checks: tuple[str, ...] = ()  # what engine/checks.py found: "not installed: jq", "cleaned: prompt"; () = all good
    logprob: float | None = None  # the model's summed log-probability (what the reviewer's score adds to)

    def to_dict(self) -> dict:
        return {"command": self.command, "score": None if self.score is None else round(self.score, 4), "source": self.source,
                "checks": list(self.checks)}


@dataclass
class DecodeOptions:
    max_new_tokens: int = 64
    length_alpha: float = 0.7  # score = logprob / length**alpha; 0 = raw sum (favours short output)
    no_repeat_ngram: int = 0  # block any token n-gram from appearing twice in a command (0 = off)
    blend: bool = True  # an example of the very request first, the lookup's commands in every other place (`blend`)
    checks: bool = True  # clean and check the final candidates (engine/checks.py); off to measure them
    review: bool = True  # rank the model's candidates with its reviewer, when it has one (engine/review.py)
    review_width: int = 10  # the beams a reviewed list decodes, every one to its end

    @classmethod
    def from_meta(cls, meta: dict) -> "DecodeOptions":
        """The decoding a checkpoint was tuned for (its recipe's [decode] section), else the defaults."""
        known = {k: v for k, v in (meta.get("decode") or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Beam(NamedTuple):
    """A live hypothesis after a decoding step."""

    score: float  # summed log-probability
    parent: int  # the beam (cache row within its request) it extends
    tokens: list[int]
    token: int  # the token it added: the next step's input


class Ended(NamedTuple):
    """A finished hypothesis."""

    score: float  # length-normalised
    tokens: list[int]
    logprob: float  # summed


class Engine:
    """A model with its tokenizer, decoding options and example index, and the decode state the model
    itself does not keep: `step`, the form of `model.cached_forward` its KV caches run (eager, or
    compiled by `compiled`)."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, name: str = "", options: DecodeOptions | None = None,
                 index: ExampleIndex | None = None, retrieval: RetrievalSettings | None = None, step=None,
                 reviewer: Reviewer | None = None):
        self.model = model.eval()
        self.step = step or model.cached_forward
        self.tokenizer = tokenizer
        self.name = name
        self.options = options or DecodeOptions()
        self.index = index  # examples the prompt shows (None: the plain prompt)
        self.retrieval = retrieval or RetrievalSettings()
        self.reviewer = reviewer  # None: the model's candidates keep the model's order
        stop = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        stop[[tokenizer.eos_id, *tokenizer.newline_ids()]] = True
        self.stop_mask = stop
        # Never generate these: they are prompt structure, not command text.
        self.banned_ids = [tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.instruction_id,
                           tokenizer.command_id]

    @classmethod
    def from_checkpoint(cls, path, options: DecodeOptions | None = None, dtype: torch.dtype | None = None) -> "Engine":
        checkpoint = load_checkpoint(path)
        dtype = dtype or inference_dtype()
        model = checkpoint.model.to(dtype)
        retrieval = RetrievalSettings.from_meta(checkpoint.meta)
        index = None
        # A model that reads no examples (k = 0) still uses its index: it fills the places of
        # candidates the checks drop, and names the utilities they know.
        if retrieval.k or examples_path(path).is_file():
            try:
                index = ExampleIndex.load(examples_path(path))
            except EngineError as e:  # the model still answers, from the plain prompt
                log.error("%s; suggesting without retrieved examples", e)
        reviewer = Reviewer(checkpoint.reviewer.to(dtype), checkpoint.tokenizer) if checkpoint.reviewer is not None else None
        return cls(model, checkpoint.tokenizer, name=str(path), options=options or DecodeOptions.from_meta(checkpoint.meta),
                   index=index, retrieval=retrieval, reviewer=reviewer)

    # -- prompts -------------------------------------------------------------------------------
    def neighbours(self, request: str) -> list[Example]:
        """The examples the prompt shows for `request`, best first (none without an index)."""
        if self.index is None or not self.retrieval.k:
            return []
        return self._adapted(request, self.index.search(request, self.retrieval.k))

    def _adapted(self, request: str, examples: list[Example]) -> list[Example]:
        return adapt_all(examples, request) if self.retrieval.adapt else examples

    def prompt_ids(self, request: str | bytes, max_new_tokens: int) -> list[int]:
        """The prompt for a request with its retrieved examples, cut to leave room to answer."""
        request = normalize_request(request)
        if len(request) > MAX_REQUEST_CHARS:
            request = request[-MAX_REQUEST_CHARS:]
        room = self.model.config.context - max_new_tokens
        overhead = self.tokenizer.prompt_overhead
        if len(self.tokenizer.encode(request)) + overhead > room:
            log.warning("request too long for the model's context: kept its last %d tokens", room - overhead)
        return self.tokenizer.encode_prompt(request, self.neighbours(request), room=room,
                                            example_tokens=self.retrieval.example_tokens)

    def _new_token_budget(self, max_new_tokens: int | None) -> int:
        limit = self.options.max_new_tokens if max_new_tokens is None else max_new_tokens
        return max(1, min(limit, self.model.config.context // 2))

    def _prefill(self, prompts: list[list[int]], rows_per_prompt: int, budget: int):
        """Left-pad the prompts, run them through the model once, and return (last logits, cache)."""
        length = max(len(p) for p in prompts)
        batch = torch.full((len(prompts), length), self.tokenizer.pad_id, dtype=torch.long)
        cache = self.model.new_kv_cache(len(prompts), length + budget)
        for row, prompt in enumerate(prompts):
            batch[row, length - len(prompt):] = torch.tensor(prompt)
            cache.mark_padding(row, length - len(prompt))
        logits = cache.advance(self.step, batch, last_only=True)[:, -1]
        if rows_per_prompt > 1:
            rows = torch.arange(len(prompts)).repeat_interleave(rows_per_prompt)
            cache.reorder(rows)
            logits = logits.index_select(0, rows)
        return logits.float(), cache

    def _log_probs(self, logits: torch.Tensor, sequences: list[list[int]]) -> torch.Tensor:
        logp = torch.log_softmax(logits, dim=-1)
        logp[:, self.banned_ids] = -math.inf
        n = self.options.no_repeat_ngram
        if n > 0:
            for row, seq in enumerate(sequences):
                if len(seq) < n - 1:
                    continue
                prefix = tuple(seq[len(seq) - n + 1:]) if n > 1 else ()
                for i in range(len(seq) - n + 1):
                    if tuple(seq[i:i + n - 1]) == prefix:
                        logp[row, seq[i + n - 1]] = -math.inf
        return logp

    def _normalise(self, logprob: float, length: int) -> float:
        return logprob / max(1, length) ** self.options.length_alpha

    # -- beam search -----------------------------------------------------------------------------
    @torch.inference_mode()
    def beam_search(self, requests: list[str], width: int = 3, n: int | None = None,
                    max_new_tokens: int | None = None, settle: list[int] | None = None) -> Iterator[list[list[Candidate]]]:
        """Yield, after each decoding step, up to `n` distinct best-first candidates per request.

        A request leaves the batch (and the cache) once its best `settle[r]` hypotheses (default
        `width`) have ended and no live beam can still beat them, so a batch costs what its
        unfinished requests need.
        """
        n = n or width
        settle = [min(width, s) for s in settle] if settle else [width] * len(requests)
        budget = self._new_token_budget(max_new_tokens)
        prompts = [self.prompt_ids(r, budget) for r in requests]
        R, W = len(prompts), width
        logits, cache = self._prefill(prompts, W, budget)
        beams: list[list[list[int]]] = [[[] for _ in range(W)] for _ in range(R)]
        scores = torch.full((R, W), -math.inf)
        scores[:, 0] = 0.0  # all beams start identical: expand only the first
        finished: list[list[Ended]] = [[] for _ in range(R)]
        active = list(range(R))  # requests still decoding; request active[a] owns cache rows a*W..a*W+W-1
        for step in range(budget):
            last = step == budget - 1
            flat = [seq for r in active for seq in beams[r]]
            logp = self._log_probs(logits, flat).view(len(active), W, -1)
            V = logp.size(-1)
            top_scores, top_ids = (scores[active][:, :, None] + logp).view(len(active), -1).topk(2 * W, dim=-1)
            still, next_rows, next_tokens = [], [], []
            for a, r in enumerate(active):
                kept = []
                for score, flat_id in zip(top_scores[a].tolist(), top_ids[a].tolist()):
                    if score == -math.inf or len(kept) == W:
                        break
                    beam, token = divmod(flat_id, V)
                    seq = beams[r][beam]
                    if self.stop_mask[token] or last:
                        ended = seq if self.stop_mask[token] else seq + [token]
                        finished[r].append(Ended(self._normalise(score, len(ended) + 1), ended, score))
                    else:
                        kept.append(Beam(score, beam, seq + [token], token))
                finished[r].sort(key=lambda ended: -ended.score)
                if self._request_done(finished[r], kept, settle[r]):
                    beams[r], scores[r] = [[] for _ in range(W)], -math.inf
                    continue
                # Fewer than W survivors: the rest are dead copies (never expanded, score -inf).
                kept += [kept[0]._replace(score=-math.inf, token=self.tokenizer.eos_id)] * (W - len(kept))
                beams[r] = [b.tokens for b in kept]
                scores[r] = torch.tensor([b.score for b in kept])
                still.append(r)
                next_rows += [a * W + b.parent for b in kept]
                next_tokens += [b.token for b in kept]
            yield [self._candidates(finished[r], beams[r], scores[r], n) for r in range(R)]
            active = still
            if not active:
                return
            cache.reorder(torch.tensor(next_rows))
            logits = cache.advance(self.step, torch.tensor(next_tokens)[:, None], last_only=True)[:, -1].float()

    def settled(self, n: int, width: int, examples: list[Example]) -> int:
        """How many of the model's best hypotheses a list of `n` with these lookup `examples` waits
        for. The blend puts the model's best first and the lookup's commands next, so the model's
        others only fill the places the lookup leaves: waiting for its best alone decodes 12.7
        steps per request instead of 17.7 on the validation split, exact match and NLC2CMD a little
        up, top-3 down by 5 of 1,955 (docs/experiments/grounded2.md, "Stop at the model's best"). Without the
        blend, all `width`."""
        return max(1, min(width, n - len(examples))) if self.options.blend else width

    def _request_done(self, finished, kept, settle: int) -> bool:
        """Done when nothing is alive, or `settle` hypotheses have ended and the best live beam,
        even scored at its current length, ranks below the best `settle` of them."""
        if not kept:
            return True
        if len(finished) < settle:
            return False
        best = kept[0]
        return finished[settle - 1].score >= self._normalise(best.score, len(best.tokens) + 1)

    def _candidates(self, finished, alive, alive_scores, n) -> list[Candidate]:
        """Finished hypotheses first, then the alive ones (so a stream shows growing commands)."""
        pool = sorted(finished, key=lambda ended: -ended.score)
        pool += [Ended(self._normalise(s, len(seq) + 1), seq, s)
                 for s, seq in zip(alive_scores.tolist(), alive) if s > -math.inf and seq]
        out, seen = [], set()
        for score, seq, logprob in pool:
            command = clean_text(self.tokenizer.decode(seq))
            if command and command not in seen:
                seen.add(command)
                out.append(Candidate(command, score, logprob=logprob))
            if len(out) == n:
                break
        return out

    # -- known answers -----------------------------------------------------------------------------
    def follow_feedback(self, db_path) -> None:
        """Make the user's accepted corrections and acceptances (the feedback store at `db_path`) known
        at once: the first candidates for their exact requests and retrieved examples for similar ones."""
        if self.index is None:
            self.index = ExampleIndex([])
        self.index.attach_feedback(db_path)

    def lookup(self, request: str, n: int) -> list[str]:
        """The distinct commands of the index's best examples for `request`: the lookup baseline."""
        return [e.command for e in self.looked_up_examples(request, n)]

    def looked_up_examples(self, request: str, n: int) -> list[Example]:
        """The index's best examples for `request` (adapted to it), one per distinct command."""
        if self.index is None:
            return []
        examples: list[Example] = []
        depth = n
        while len(examples) < n and depth <= 8 * n:
            by_command = {}
            for e in self._adapted(request, self.index.search(request, depth)):
                by_command.setdefault(e.command, e)
            examples = list(by_command.values())[:n]
            depth *= 2
        return examples

    def known_utilities(self) -> frozenset[str]:
        """The programs the candidate checks know from this model's example index (and the user's answers)."""
        return self.index.utilities() if self.index is not None else frozenset()

    def known_options(self) -> KnownOptions:
        """The long options the candidate checks know each program to take, from the example index."""
        return self.index.options() if self.index is not None else KnownOptions()

    def list_examples(self, request: str, n: int) -> list[Example]:
        """The lookup's examples a final list of `n` draws on (`with_known`); none when neither the
        blend nor the checks use them."""
        return self.looked_up_examples(request, n) if self.options.checks or self.options.blend else []

    def with_known(self, request: str, candidates: list[Candidate], n: int,
                   examples: list[Example] | None = None) -> list[Candidate]:
        """The final list for `request`: the user's own answers for it first; then the model's
        candidates and the lookup's, each checked on its own (engine/checks.py drops what does not
        parse or runs an invented tool), then blended (`options.blend`: an example of this very
        request first when the model agrees on its program, then `blend`), else the lookup's after
        the model's, filling the places the checks freed. A command both propose keeps its first
        place. Here the lookup's commands are not scored (that costs a forward pass: only a reviewed
        list pays it, in `scored_examples`). `examples`: `list_examples` (None: looked up here)."""
        user = [Candidate(e.command, 0.0, e.source) for e in self.index.user_matches(request)] if self.index is not None else []
        examples = self.list_examples(request, n) if examples is None else examples
        looked = [Candidate(e.command, None, "example") for e in examples]
        if self.options.checks:
            known, options = self.known_utilities(), self.known_options()
            user, candidates, looked = (check_candidates(part, known, request, options) for part in (user, candidates, looked))
        # An example of this very request (its words, after adaptation) whose program the model's
        # best runs too has the likelier flags: it leads. Without the model's agreement it does not
        # ("Show disk usage" is also `docker buildx du`, a line of docker's tldr page).
        same = (self.options.blend and examples and looked and candidates and looked[0].command == examples[0].command
                and same_words(examples[0].request, request)
                and first_program(looked[0].command) == first_program(candidates[0].command))
        lead = looked[:1] if same else []
        ordered = user + lead + (blend(candidates, looked) if self.options.blend else candidates + looked)
        return doubtful_last(first_of_each(ordered)[:n])

    @property
    def is_compiled(self) -> bool:
        return self.step != self.model.cached_forward

    def compiled(self, widths: tuple[int, ...] = (1, 3), int8: bool = False) -> "Engine":
        """A new engine whose steps are compiled for single requests decoded with these beam widths,
        with the cache lengths its prompts need (`cache_lengths`, engine/compiled.py); other shapes
        (batches) run eager. This engine is left as it is, so it can keep answering while the
        compiler works."""
        from .compiled import compile_steps

        lengths = self.cache_lengths()
        steps = compile_steps(self.model, decode=[(width, length) for width in widths for length in lengths],
                              prefill=[(1, length) for length in lengths], int8=int8)
        engine = copy.copy(self)  # the same tokenizer, options and example index
        engine.model, engine.step = steps.model, steps
        return engine

    def cache_lengths(self) -> list[int]:
        """The KV cache lengths a single request's decoding uses (a cache holds the prompt and the
        answer, rounded up to 64 positions): prompts of up to 64 tokens without retrieved examples;
        with them, every length up to the context (three retrieved examples make prompts of
        100-200 tokens)."""
        shortest = self.model.new_kv_cache(1, 64 + self._new_token_budget(None)).length
        longest = self.model.config.context if self.retrieval.k else shortest
        return list(range(shortest, longest + 1, 64))

    def warm_up(self) -> None:
        """One throwaway suggestion: the first decode pays for kernel set-up, so a user's first should not."""
        self.suggest("list files", n=1)

    def suggest(self, request: str, n: int = 3, max_new_tokens: int | None = None,
                review: bool | None = None) -> list[Candidate]:
        return self.suggest_batch([request], n=n, max_new_tokens=max_new_tokens, review=review)[0]

    def suggest_batch(self, requests: list[str], n: int = 1, width: int | None = None,
                      max_new_tokens: int | None = None, review: bool | None = None) -> list[list[Candidate]]:
        result = []
        for result in self.suggestions(requests, n=n, width=width, max_new_tokens=max_new_tokens, review=review):
            pass
        return result

    def suggestions(self, requests: list[str], n: int = 1, width: int | None = None,
                    max_new_tokens: int | None = None, review: bool | None = None) -> Iterator[list[list[Candidate]]]:
        """Each request's candidates after every decoding step (the model's, growing: what the app
        streams), and last the final lists (`with_known`). `review` (default `options.review`) ranks
        the model's candidates with its reviewer, if it has one: that decodes `options.review_width`
        beams, each to its end, ~3x the time of the model's order (the key binding asks without)."""
        review = self.reviews(review)
        width = max(n, width or n, self.options.review_width if review else 0)
        examples = [self.list_examples(request, n) for request in requests]
        settle = [width] * len(requests) if review else [self.settled(n, width, e) for e in examples]
        # The beam's other finished hypotheses cost nothing more: spares for candidates the checks drop.
        pool = 2 * n if self.options.checks else n
        result = []
        for result in self.beam_search(requests, width=width, n=width if review else pool,
                                       max_new_tokens=max_new_tokens, settle=settle):
            yield [candidates[:n] for candidates in result]
        if review:  # the lookup's commands compete too: the reviewer may prefer one to every beam
            result = [self.reviewed(request, candidates + self.scored_examples(request, known, candidates))[:pool]
                      for request, candidates, known in zip(requests, result, examples)]
        yield [self.with_known(request, candidates, n, known)
               for request, candidates, known in zip(requests, result, examples)]

    def reviews(self, review: bool | None = None) -> bool:
        """Whether a list is ranked by the reviewer: asked for (else `options.review`) and there is one."""
        return self.reviewer is not None and (self.options.review if review is None else review)

    def scored_examples(self, request: str, examples: list[Example], beams: list[Candidate]) -> list[Candidate]:
        """The examples' commands the beams lack, as candidates with the model's log-probability of
        writing each after this request's prompt (one forward pass), for the reviewer to rank."""
        written = {c.command for c in beams}
        commands = list(dict.fromkeys(e.command for e in examples if e.command not in written))
        if not commands:
            return []
        budget = self._new_token_budget(None)
        prompt = self.prompt_ids(request, budget)
        answers = [(self.tokenizer.encode(command) + [self.tokenizer.eos_id])[:budget] for command in commands]
        rows = [(prompt + answer, [IGNORE_INDEX] * len(prompt) + answer) for answer in answers]
        return [Candidate(command, None, "example", logprob=logprob)
                for command, logprob in zip(commands, summed_logprobs(self.model, rows, self.tokenizer.pad_id))]

    def reviewed(self, request: str, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates best first by log p(command | request) + WEIGHT * log p(request | command),
        less MISSING_PROGRAM_COST for one that runs a program this machine lacks (with the checks on)."""
        commands = [c.command for c in candidates]
        back = self.reviewer.scores(request, commands)
        missing = runs_missing_program(commands, request) if self.options.checks else [False] * len(commands)
        totals = [c.logprob + WEIGHT * b - MISSING_PROGRAM_COST * m for c, b, m in zip(candidates, back, missing)]
        return [c for _, c in sorted(zip(totals, candidates), key=lambda pair: -pair[0])]

    # -- sampling --------------------------------------------------------------------------------
    @torch.inference_mode()
    def stream(self, request: str, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
               max_new_tokens: int | None = None, seed: int | None = None) -> Iterator[str]:
        """Yield the command's text piece by piece. temperature 0 is greedy."""
        budget = self._new_token_budget(max_new_tokens)
        logits, cache = self._prefill([self.prompt_ids(request, budget)], 1, budget)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        ids, text = [], ""
        for _ in range(budget):
            logp = self._log_probs(logits, [ids])[0]
            token = sample(logp, temperature, top_k, top_p, generator)
            if self.stop_mask[token]:
                return
            ids.append(token)
            # A character spread over byte tokens decodes to U+FFFD until its last byte arrives:
            # hold that back, so every piece extends what was sent and nothing is sent twice.
            new_text = self.tokenizer.decode(ids).rstrip(INCOMPLETE_CHAR)
            if len(new_text) > len(text) and new_text.startswith(text):
                yield new_text[len(text):]
                text = new_text
            logits = cache.advance(self.step, torch.tensor([[token]]), last_only=True)[:, -1].float()

    def complete(self, request: str, **sampling) -> str:
        return clean_text("".join(self.stream(request, **sampling)))


def sample(logp: torch.Tensor, temperature: float, top_k: int, top_p: float, generator=None) -> int:
    if temperature <= 0:
        return int(logp.argmax())
    logits = logp / temperature
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) > top_p
        logits[order[drop]] = -math.inf
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


def blend(model: list[Candidate], looked: list[Candidate]) -> list[Candidate]:
    """The model's best, the lookup's best, then the lookup's next and the model's next in turn
    (a command in both lists is there twice: the caller keeps its first place). On
    the validation split this beats the model's own list and the lookup's on exact match and NLC2CMD
    (docs/experiments/grounded2.md, "Same request first")."""
    out = model[:1] + looked[:1]
    for pair in itertools.zip_longest(looked[1:], model[1:]):
        out += [c for c in pair if c is not None]
    return out


def timed_suggest(engine: Engine, request: str, n: int, review: bool | None = None) -> tuple[list[Candidate], float]:
    start = time.perf_counter()
    candidates = engine.suggest(request, n=n, review=review)
    return candidates, (time.perf_counter() - start) * 1000
