"""Training speed: tokens/s of our training step (bf16 autocast, optionally compiled) against a plain
fp32 eager step of the same model, and MFU against this machine's measured bf16 matmul peak.

FLOPs per token follow nanoGPT: 6N for the weights plus 12 * layers * d_model * context for attention.
"""
import time

import torch

from engine.model import GPT, preset

from .config import TrainConfig
from .trainer import make_optimizer


def measure_peak_tflops(size: int = 2048, seconds: float = 2.0) -> float:
    """bf16 matmul throughput of this machine (what MFU is measured against)."""
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e12


def step_tokens_per_second(model: GPT, batch_size: int, bf16: bool, compile: bool, steps: int, seq_len: int) -> float:
    optimizer = make_optimizer(model, TrainConfig(lr=1e-4))
    step_model = torch.compile(model) if compile else model
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(6, model.config.vocab_size, (batch_size, seq_len + 1), generator=generator)
    inputs, targets = x[:, :-1], x[:, 1:]

    def one_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = step_model(inputs, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up (and compilation)
        one_step()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    return batch_size * seq_len * steps / (time.perf_counter() - start)


def flops_per_token(model: GPT, seq_len: int) -> int:
    c = model.config
    return 6 * model.num_params() + 12 * c.n_layer * c.d_model * seq_len


def bench_train(preset_name: str = "tiny", batch_size: int = 8, steps: int = 5, compile: bool = False) -> dict:
    torch.manual_seed(0)
    config = preset(preset_name)
    seq_len = config.context
    fp32 = step_tokens_per_second(GPT(config), batch_size, bf16=False, compile=False, steps=steps, seq_len=seq_len)
    ours = step_tokens_per_second(GPT(config), batch_size, bf16=True, compile=compile, steps=steps, seq_len=seq_len)
    peak = measure_peak_tflops()
    model = GPT(config)
    return {
        "params": model.num_params(),
        "tok_s": round(ours, 1),
        "fp32_eager_tok_s": round(fp32, 1),
        "speedup": round(ours / fp32, 2),
        "mfu": round(flops_per_token(model, seq_len) * ours / (peak * 1e12), 4),
        "peak_tflops": round(peak, 3),
    }
