"""Int8 weight-only matmuls for compiled decoding: half the bytes of bf16 to read per token.

`int8_copy` returns a copy of the model whose matmul weights (and tied output head) are int8 with a
scale per output channel, and sets the original model's weights to the same values dequantized, so
the eager model and the int8 copy compute the same function (to bf16 rounding). The compiled steps
run the copy; eager prefill, recomputing and training tools keep seeing ordinary weights.
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


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: (q, scales in the weight's dtype)."""
    scales = weight.float().abs().amax(1).clamp(min=1e-12) / 127
    q = torch.round(weight.float() / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales.to(weight.dtype)


@torch.no_grad()
def int8_copy(model: GPT) -> GPT:
    quantized = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            quantized[name] = quantize(module.weight)
    head = quantize(model.embed.weight)
    for name, (q, scales) in [*quantized.items(), ("embed", head)]:
        module = model.get_submodule(name)
        module.weight.copy_((q.float() * scales.float()[:, None]).to(module.weight.dtype))
    copied = copy.deepcopy(model, memo={id(model.compiled_steps): None})  # not an earlier compiled form
    for name, (q, scales) in quantized.items():
        parent, _, child = name.rpartition(".")
        setattr(copied.get_submodule(parent), child, Int8Linear(q, scales))
    copied.lm_head = Int8Linear(*head)
    return copied
