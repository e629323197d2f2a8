"""Compiled inference steps: the eager logits, compiled only where prepared (other shapes run eager
rather than compile mid-request), and a compiler failure is one clear error that leaves them eager."""
import pytest
import torch

import engine.compiled
from engine.compiled import compile_steps
from engine.errors import EngineError
from engine.model import GPT, preset


def cached_logits(model, step, idx, prompt_tokens):
    cache = model.new_kv_cache(idx.size(0), 32)
    pieces = [cache.advance(step, idx[:, :prompt_tokens], last_only=True)]
    pieces += [cache.advance(step, idx[:, i:i + 1], last_only=True) for i in range(prompt_tokens, idx.size(1))]
    return torch.cat(pieces, 1)


@pytest.fixture
def quick_compile(tmp_path, monkeypatch):
    """Kernels in a private home, and no autotuning: it picks the fastest kernels, which these tests
    do not measure, and would take a minute."""
    monkeypatch.setenv("TINYLLM_HOME", str(tmp_path))
    monkeypatch.setitem(engine.compiled.INDUCTOR_CONFIG, "max_autotune", False)


@torch.inference_mode()
def test_compiled_steps_give_the_eager_logits_and_other_shapes_run_eager(quick_compile):
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=300)).eval()
    idx = torch.randint(6, 300, (2, 12))
    expected = model(idx)
    steps = compile_steps(model, decode=[(2, 32)], prefill=[(2, 32)])
    assert steps.model is model and steps.decode_shapes == steps.prefill_shapes == {(2, 64)}
    for prompt_tokens in (5, 9):  # prompts of other lengths than the 2 tokens it was compiled with
        logits = cached_logits(model, steps, idx, prompt_tokens)
        assert torch.allclose(logits, expected[:, prompt_tokens - 1:], atol=1e-4)
    assert steps.calls == {"compiled": 2 + 7 + 3}
    cached_logits(model, steps, idx[:1], 5)  # batch 1 was not prepared
    assert steps.calls == {"compiled": 12, "eager": 1 + 7}


def test_a_compiler_failure_is_one_clear_error_and_inference_stays_eager(quick_compile, monkeypatch):

    def fail(self, batch, length, prompt=False):
        raise RuntimeError("C++ compile error\n" + "details " * 100)

    monkeypatch.setattr(engine.compiled.CompiledSteps, "prepare", fail)
    model = GPT(preset("nano", vocab_size=300))
    with pytest.raises(EngineError, match=r"^cannot compile the inference steps \(C\+\+ compile error\); they stay eager$"):
        compile_steps(model, decode=[(1, 32)], prefill=[])


@torch.inference_mode()
def test_int8_steps_and_their_eager_model_compute_the_same_function_leaving_the_model_alone(quick_compile):
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=300)).eval()
    before = {name: p.clone() for name, p in model.state_dict().items()}
    steps = compile_steps(model, decode=[(2, 32)], prefill=[(2, 32)], int8=True)
    # The live model is untouched (requests may be decoding with it while this compiles) ...
    assert all(torch.equal(p, before[name]) for name, p in model.state_dict().items())
    # ... and the steps' eager model holds the int8 values dequantized: within half a quantisation step.
    original, changed = model.blocks[0].mlp.up.weight, steps.model.blocks[0].mlp.up.weight
    step_size = original.abs().amax(1, keepdim=True) / 127
    assert not torch.equal(changed, original) and ((changed - original).abs() <= step_size / 2 + 1e-6).all()
    idx = torch.randint(6, 300, (2, 12))
    expected = steps.model(idx)  # eager, dequantized weights
    assert torch.allclose(cached_logits(steps.model, steps, idx, 5), expected[:, 4:], atol=1e-3)
    assert steps.calls == {"compiled": 1 + 7}
