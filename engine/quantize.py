"""Int8 weight-only matmuls for compiled decoding: half the bytes of bf16 to read per token.

`int8_models` returns two copies of a model: one whose matmul weights (and tied output head) are int8
with a scale per output channel, and one whose weights are those same values dequantized, so the two
compute the same function (to bf16 rounding). The compiled steps run the int8 copy; eager prefill and
recomputing run the dequantized one. The model passed in is left alone: requests may be decoding with it.
"""
import copy

import torch
import torch.nn as nn

from .model import GPT


class Int8Linear(nn.Module):
    """y = x @ (q * scale).T with q int8 (out, in): `_weight_int8pack_mm`, which Inductor compiles
    to its int8 GEMM template (the `x @ q.to(bf16).T * scale` form is not recognised and is slower)."""

    def __init__(self, q: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(q, requires_grad=False)
        self.scales = nn.Parameter(scales, requires_grad=False)

    def forward(self, x):
        flat = x.reshape(-1, x.size(-1))
        return torch._weight_int8pack_mm(flat, self.weight, self.scales).view(*x.shape[:-1], -1)


class Int8GPT(GPT):
    """The model with Int8Linear matmuls and an int8 output head (the embedding lookup keeps its float
    rows); made by `int8_models` only."""

    int8_head: Int8Linear

    def _head(self, x):
        return self.int8_head(x)


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: (q, scales in the weight's dtype)."""
    scales = weight.float().abs().amax(1).clamp(min=1e-12) / 127
    q = torch.round(weight.float() / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales.to(weight.dtype)


@torch.no_grad()
def int8_models(model: GPT) -> tuple[GPT, Int8GPT]:
    """(dequantized, int8): new copies of `model` computing the same function; `model` is not touched."""
    dequantized = copy.deepcopy(model)
    quantized = {name: quantize(module.weight) for name, module in dequantized.named_modules()
                 if isinstance(module, nn.Linear)}
    head = quantize(dequantized.embed.weight)
    for name, (q, scales) in [*quantized.items(), ("embed", head)]:
        weight = dequantized.get_submodule(name).weight
        weight.copy_((q.float() * scales.float()[:, None]).to(weight.dtype))
    int8 = copy.deepcopy(dequantized)
    int8.__class__ = Int8GPT  # the same modules and buffers; only the output head differs
    for name, (q, scales) in quantized.items():
        parent, _, child = name.rpartition(".")
        setattr(int8.get_submodule(parent), child, Int8Linear(q, scales))
    int8.int8_head = Int8Linear(*head)
    return dequantized, int8
