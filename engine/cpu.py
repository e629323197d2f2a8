"""How torch runs on the user's CPU: threads, denormals, and the dtype used for inference."""
import os
from pathlib import Path

import torch

MAX_THREADS = 2  # beyond two, small models gain little and the rest of the machine loses a core


def configure_torch() -> None:
    """Call once per process before running a model. OMP_NUM_THREADS, when set, wins."""
    # fp32 on x86 slows 3-4x once weights or activations hold denormals.
    torch.set_flush_denormal(True)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, min(MAX_THREADS, os.cpu_count() or 1)))


def inference_dtype() -> torch.dtype:
    """bf16 on CPUs that compute it natively: decoding reads every weight once per token, so half
    the bytes is nearly half the time (and the bundled weights are bf16 already).
    TINYLLM_DTYPE=float32 overrides."""
    choice = os.environ.get("TINYLLM_DTYPE", "")
    if choice:
        return torch.float32 if choice in ("float32", "fp32") else torch.bfloat16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32
