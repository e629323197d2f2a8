"""The decode benchmark's agreement check: logits within a tolerance, and a one-line error otherwise."""
import pytest
import torch

from engine.benchmark import bench_decode, check_agreement
from engine.errors import EngineError
from engine.model import GPT, preset


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(preset("nano", vocab_size=300)).eval()


def test_rounding_differences_pass_and_a_wrong_step_is_one_clear_error(model):
    prompt = torch.randint(6, 300, (1, 8))

    def rounded(*args):  # near-tied logits may swap order under other rounding (bf16, AMX)
        logits = model.cached_forward(*args)
        return logits + 1e-3 * logits.abs().amax(-1, keepdim=True) * torch.randn_like(logits)

    check_agreement(model, rounded, prompt, 6)

    def wrong(*args):
        return model.cached_forward(*args).flip(-1)

    with pytest.raises(EngineError, match=r"^cached and uncached decoding disagree: logits differ by"):
        check_agreement(model, wrong, prompt, 6)


def test_bench_decode_reports_speed(model):
    result = bench_decode(model, prompt_tokens=4, new_tokens=4, runs=2)
    assert result["cached_tok_s"] > 0 and result["compiled"] is False and result["new_tokens"] == 4
