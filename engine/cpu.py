"""How torch runs on the user's CPU: threads, denormals, malloc arenas, and the dtype used for inference."""
import ctypes
import ctypes.util
import os
from pathlib import Path

import torch

MAX_THREADS = 2  # beyond two, small models gain little and the rest of the machine loses a core
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def configure_torch() -> None:
    """Call once per process before running a model. OMP_NUM_THREADS, when set, wins."""
    # fp32 on x86 slows 3-4x once weights or activations hold denormals.
    torch.set_flush_denormal(True)
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, min(MAX_THREADS, os.cpu_count() or 1)))


def limit_malloc_arenas() -> None:
    """For a process that runs the model from many short-lived threads (the daemon: one per request).

    glibc gives threads their own malloc arenas, up to 8 per core, and each keeps the freed tensor
    memory of the threads that used it: RSS grew ~40% over 500 fuzzed requests, ~9% with two arenas.
    MALLOC_ARENA_MAX, when set, wins; elsewhere than glibc this does nothing."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


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
