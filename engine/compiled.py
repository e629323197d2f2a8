"""Optional compiled inference steps, for when decode speed matters more than start-up time.

Decoding reads every weight once per token. Eager one-row matmuls read them at about a third of
this CPU's memory bandwidth; Inductor's C++ GEMM templates, with the weights frozen into the graph,
come near it (the tiny preset in bf16: 0.9 against 3.7 ms a token), and a compiled prompt prefill
takes half the eager time. Compiling costs one to three minutes of CPU per model, so it is opt-in
(`tinyllm serve --compile`, TINYLLM_COMPILE=1, `tinyllm bench decode --compile`) and done up front
for the shapes named; any other shape runs eager, so a request never waits for the compiler.
"""
import os
import warnings
from collections import Counter

import torch

from . import paths
from .errors import EngineError
from .model import GPT
from .quantize import int8_models


INDUCTOR_CONFIG = {
    "freezing": True,  # weights become constants, prepacked for the GEMM kernels
    "max_autotune": True,  # try Inductor's C++ GEMM templates against ATen for every matmul
    "max_autotune_gemm_backends": "CPP,ATEN",
    "autotune_num_choices_displayed": 0,  # the tuner otherwise prints every trial to stderr
    "max_autotune_report_choices_stats": False,
}


def compile_requested() -> str | None:
    """TINYLLM_COMPILE: unset or 0 compiles nothing, `int8` compiles with int8 weights, else plain."""
    value = os.environ.get("TINYLLM_COMPILE", "")
    return None if value in ("", "0") else "int8" if value == "int8" else "plain"


class CompiledSteps:
    """Stands in for `GPT.cached_forward` as the step an engine passes its KV cache: one graph for
    one-token steps of each prepared (batch, cache length), one for prompts of any length (batch and
    cache length prepared too). `model` is the eager model the other shapes run on: the one given, or
    with int8 a dequantized copy of it, computing what the int8 graphs compute."""

    def __init__(self, model: GPT, int8: bool = False):
        # Kernels land in our private cache, not a shared /tmp folder (they embed the weights).
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.cache_dir() / "inductor"))
        import torch._inductor.config as inductor

        for name, value in INDUCTOR_CONFIG.items():
            setattr(inductor, name, value)
        # The given model is never changed: requests may be decoding with it meanwhile.
        self.model, target = int8_models(model) if int8 else (model, model)
        self.decode = torch.compile(target.cached_forward, dynamic=False)
        self.prefill = torch.compile(target.cached_forward)  # the prompt length is marked dynamic below
        self.decode_shapes: set[tuple[int, int]] = set()
        self.prefill_shapes: set[tuple[int, int]] = set()
        self.calls = Counter()  # steps run "compiled" and "eager"

    @torch.inference_mode()
    def prepare(self, batch: int, length: int, prompt: bool = False) -> None:
        """Compile the step for `batch` rows and a cache sized for `length` positions: one-token
        decoding, or with `prompt` a prefill of any length from 2 tokens up."""
        cache = self.model.new_kv_cache(batch, length)
        tokens = 2 if prompt else 1
        idx, positions = torch.zeros(batch, tokens, dtype=torch.long), torch.arange(tokens)
        if prompt:
            torch._dynamo.mark_dynamic(idx, 1)
            torch._dynamo.mark_dynamic(positions, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation noise from inside the compiler
            (self.prefill if prompt else self.decode)(idx, positions, cache.valid, cache.k, cache.v, True)
        (self.prefill_shapes if prompt else self.decode_shapes).add((batch, cache.length))

    def __call__(self, idx, positions, valid, keys, values, last_only: bool = False):
        single = idx.size(1) == 1
        shapes = self.decode_shapes if single else self.prefill_shapes
        if last_only and (idx.size(0), keys.size(3)) in shapes:
            try:
                with torch.compiler.set_stance("fail_on_recompile"):  # never compile mid-request
                    step = self.decode if single else self.prefill
                    logits = step(idx.contiguous(), positions, valid, keys, values, True)  # graphs guard strides
                self.calls["compiled"] += 1
                return logits
            except RuntimeError:
                pass  # a shape the graph does not cover after all: run it eager
        self.calls["eager"] += 1
        return self.model.cached_forward(idx, positions, valid, keys, values, last_only)


def compile_steps(model: GPT, decode: list[tuple[int, int]], prefill: list[tuple[int, int]],
                  int8: bool = False) -> CompiledSteps:
    """Compile decode steps for each (batch, cache length) in `decode` and prompt prefills for each
    in `prefill`. `int8` reads int8 weights (engine/quantize.py). Pass the result (and run anything
    uncached on its `.model`) where `model.cached_forward` went."""
    steps = CompiledSteps(model, int8)
    try:
        for batch, length in decode:
            steps.prepare(batch, length)
        for batch, length in prefill:
            steps.prepare(batch, length, prompt=True)
    except Exception as e:  # no C++ compiler, an unsupported CPU, ...: inference stays eager
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EngineError(f"cannot compile the inference steps ({reason}); they stay eager") from e
    return steps
