"""Decode speed: the KV-cache path against recomputing the whole sequence for every new token.

Both loops decode exactly `new_tokens` greedy tokens (stop tokens ignored) so the work is equal.
"""
import statistics
import time

import torch

from .errors import EngineError
from .model import GPT


@torch.inference_mode()
def decode_cached(model: GPT, step, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy tokens from a KV cache run by `step` (model.cached_forward or a compiled form)."""
    return _decode_cached(model, step, prompt, new_tokens)[0]


def _decode_cached(model: GPT, step, prompt: torch.Tensor, new_tokens: int) -> tuple[torch.Tensor, list]:
    """(tokens (B, new_tokens), the (B, 1, V) logits each was picked from)."""
    cache = model.new_kv_cache(prompt.size(0), prompt.size(1) + new_tokens)
    logits = [cache.advance(step, prompt, last_only=True)]
    out = [logits[-1][:, -1].argmax(-1, keepdim=True)]
    for _ in range(new_tokens - 1):
        logits.append(cache.advance(step, out[-1], last_only=True))
        out.append(logits[-1][:, -1].argmax(-1, keepdim=True))
    return torch.cat(out, 1), logits


@torch.inference_mode()
def decode_uncached(model: GPT, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    seq = prompt
    for _ in range(new_tokens):
        next_token = model(seq)[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, next_token], 1)
    return seq[:, prompt.size(1):]


# A step's logits may differ from recomputing's by this fraction of the largest logit: bf16, AMX and
# compiled kernels round differently (and random weights have near-tied logits, so comparing the
# picked tokens would fail on rounding alone).
AGREEMENT_TOLERANCE = 0.05


@torch.inference_mode()
def check_agreement(model: GPT, step, prompt: torch.Tensor, new_tokens: int) -> None:
    """Both paths must compute the same thing: every next-token logit of a cached greedy decode is
    compared with recomputing the whole sequence up to it (the tokens the cached path picked)."""
    tokens, stepped = _decode_cached(model, step, prompt, new_tokens)
    full = model(torch.cat([prompt, tokens[:, :-1]], 1))[:, prompt.size(1) - 1:]
    stepped, full = torch.cat(stepped, 1).float(), full.float()
    difference = ((stepped - full).abs().amax(-1) / full.abs().amax(-1).clamp(min=1e-3)).max().item()
    if difference > AGREEMENT_TOLERANCE:
        raise EngineError(f"cached and uncached decoding disagree: logits differ by {difference:.1%} "
                          f"of the largest (allowed {AGREEMENT_TOLERANCE:.0%})")


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def bench_decode(model: GPT, prompt_tokens: int = 16, new_tokens: int = 24, runs: int = 20, seed: int = 0,
                 compile: bool = False, int8: bool = False) -> dict:
    """With `compile`, the cached path's prefill and one-token steps are compiled first
    (engine/compiled.py); recomputing stays eager, as a model without a cache would run. With
    `int8`, both paths run the int8 weights (recomputing them dequantized)."""
    model.eval()
    step, compile_s = model.cached_forward, 0.0
    if compile:
        from .compiled import compile_steps

        start = time.perf_counter()
        shape = (1, prompt_tokens + new_tokens)
        step = compile_steps(model, decode=[shape], prefill=[shape], int8=int8)
        model = step.model
        compile_s = time.perf_counter() - start
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(6, model.config.vocab_size, (1, prompt_tokens), generator=generator)
    check_agreement(model, step, prompt, new_tokens)
    cached = [_timed(decode_cached, model, step, prompt, new_tokens) for _ in range(runs)]
    uncached = [_timed(decode_uncached, model, prompt, new_tokens) for _ in range(max(3, runs // 4))]
    cached_tok_s = new_tokens / statistics.median(cached)
    uncached_tok_s = new_tokens / statistics.median(uncached)
    cached_ms = sorted(t * 1000 for t in cached)
    return {
        "params": model.num_params(),
        "cached_tok_s": round(cached_tok_s, 1),
        "uncached_tok_s": round(uncached_tok_s, 1),
        "speedup": round(cached_tok_s / uncached_tok_s, 2),
        "p50_ms": round(statistics.median(cached_ms), 2),
        "p95_ms": round(cached_ms[min(len(cached_ms) - 1, int(0.95 * len(cached_ms)))], 2),
        "new_tokens": new_tokens,
        "prompt_tokens": prompt_tokens,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "compiled": ("int8" if int8 else True) if compile else False,
        "compile_s": round(compile_s, 1),
    }


def bench_index(path, k: int = 5, queries: int = 1000) -> dict:
    """Load the example index at `path` and time `queries` searches with requests drawn from it."""
    import random

    from .examples import ExampleIndex

    start = time.perf_counter()
    index = ExampleIndex.load(path)
    load_ms = (time.perf_counter() - start) * 1000
    requests = [e.request for e in random.Random(0).sample(index.examples, min(queries, len(index.examples)))]
    times = []
    for request in requests:
        start = time.perf_counter()
        index.search(request, k)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"examples": len(index.examples), "queries": len(times), "k": k, "load_ms": round(load_ms, 1),
            "p50_ms": round(statistics.median(times), 3), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3)}
